"""MiniLM embeddings against transformers' own BertModel plus pooling computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerscope.learn.embed import MAX_LENGTH, default_embedder

TEXTS = [
    "The logit lens reads every layer through the final norm and the unembedding.",
    "What is an induction head?",
    "ok",
    "attention " * 400,  # longer than the model's 256 word pieces: truncated
]


@pytest.fixture(scope="module")
def embedder():
    return default_embedder()


def test_packaged_model_settings(embedder):
    assert embedder.max_length == MAX_LENGTH == 256
    assert (embedder.directory / "model.safetensors").is_file()
    assert [len(ids) for ids in embedder.tokenize(TEXTS)][-1] == 256


def test_matches_transformers_with_masked_mean_pooling_and_l2_norm(embedder):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedder.directory))
    bert = AutoModel.from_pretrained(str(embedder.directory)).eval()
    batch = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state.numpy().astype(np.float64)
    mask = batch["attention_mask"].numpy().astype(np.float64)
    expected = []
    for h, m in zip(hidden, mask, strict=True):  # by hand: mean over real tokens, unit length
        v = h[m == 1].sum(0) / m.sum()
        expected.append(v / np.sqrt((v * v).sum()))
    got = embedder.encode(TEXTS)  # > SMALL_TOKENS word pieces: the torch path
    assert got.shape == (4, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected), atol=2e-5)
    small = np.stack([embedder.encode([t])[0] for t in TEXTS[:3]])  # one question: numpy
    np.testing.assert_allclose(small, np.array(expected[:3]), atol=2e-5)
    ids = embedder.tokenize(TEXTS)
    np.testing.assert_allclose(embedder._batch_numpy(ids), got, atol=2e-5)  # both paths agree
    # the same ids as transformers' tokenizer
    assert embedder.tokenize(TEXTS[:1])[0] == tok(TEXTS[0])["input_ids"]


def test_batching_does_not_change_vectors(embedder):
    together = embedder.encode(TEXTS[:3], batch_size=3)
    alone = np.stack([embedder.encode([t])[0] for t in TEXTS[:3]])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # meaning: a paraphrase is closer than an unrelated sentence
    a, b, c = embedder.encode(
        ["How does the logit lens work?", "Explain the logit lens.", "I like pizza with cheese."]
    )
    assert a @ b > a @ c + 0.2
