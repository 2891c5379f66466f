"""A small knowledge base in a temporary directory, and a private cache for its index."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = {
    "logit-lens": """# The logit lens

The logit lens decodes the hidden state of an intermediate layer as if it were the last one.

## The recipe

Take the residual stream at a layer, apply the final norm and the unembedding matrix, and
softmax the logits. The result is the layer's guess at the next token.

## Reading the heatmap

Each cell of the heatmap is one layer at one position, coloured by the probability of the final
answer. See [attention](attention.md#induction-heads) for what moves information between positions.
""",
    "attention": """# Attention heads

Attention moves information between positions of the sequence.

## Queries and keys

Every head compares a query vector with the key vectors of earlier positions; the softmax of the
scores says where the head looks.

## Induction heads

An induction head finds an earlier copy of the current token and predicts the token that came
after that copy, so repeated text becomes easy to continue.

## Induction heads

A second section with the same heading gets its own anchor.
""",
    "sampling": """# Choosing the next token

The model gives a probability for every token of the vocabulary.

## Temperature

Dividing the logits by a temperature above one flattens the distribution; below one sharpens
it; zero means greedy decoding, always the most likely token.

## Top-k sampling

Top-k keeps only the k most likely tokens and samples among them.

```python
## not a heading: inside a code block
```
""",
    "ablation": """# Ablation

Ablation turns a component off to see whether the output depends on it.

## Zero and mean ablation

Zero ablation replaces a head's output with zeros. Mean ablation replaces it with its average
over the positions of the prompt, which keeps the typical scale of the activations.
""",
}

QUESTIONS = [
    ("How does the temperature change sampling?", "sampling"),
    ("What does an induction head do?", "induction heads"),
    ("How do I decode an intermediate layer with the unembedding?", "logit-lens"),
    ("What happens when a head's output is replaced by its average?", "ablation"),
]


def write_docs(directory: Path, docs: dict[str, str] = DOCS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for slug, text in docs.items():
        (directory / f"{slug}.md").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def docs_dir(tmp_path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(path))
    for var in ("LAYERSCOPE_CHAT_URL", "LAYERSCOPE_CHAT_MODEL", "LAYERSCOPE_CHAT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture(scope="session")
def small_index(tmp_path_factory):
    """The index of DOCS, built once per session."""
    from layerscope.learn.index import Index

    return Index.build(write_docs(tmp_path_factory.mktemp("kb") / "docs"))
