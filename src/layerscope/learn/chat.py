"""The cited chatbot: retrieve passages, then answer from them, streamed.

:func:`answer` yields events: first :class:`Sources` (the numbered passages, best first), then
:class:`Delta` pieces of the answer's text, then :class:`Done` (the whole answer, the sources and
who wrote it: ``"model"``, ``"endpoint"`` or ``"extractive"``). A generator (the loaded model, or
an OpenAI-compatible endpoint) gets a prompt that tells it to answer only from the numbered
sources and to cite them as [1], [2]; it also sees what the user is looking at (model, prompt,
view, layer, interventions) and the last few turns. With no generator, when it fails, or when its
answer fails a simple grounding check, the answer is extractive: the sentences of the best
passages that share the most (IDF-weighted) words with the question, each cited — labelled as
such. A ``Delta`` with ``replace`` set replaces everything streamed before it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from layerscope.learn.generate import GenerationError, Generator
from layerscope.learn.index import Hit, Index, terms
from layerscope.learn.kb import plain_text

TOP_K = 4  # passages given to the generator and returned as sources
MAX_HISTORY = 6  # turns of the conversation kept
MAX_TURN_CHARS = 1_000
MAX_SOURCE_CHARS = 1_500
EXTRACTIVE_LABEL = "From the knowledge base (extractive: sentences quoted from the sources below):"

SYSTEM = (
    "You are layerscope's guide: you explain how transformer language models work and how to "
    "read layerscope's views. Answer the user's question using only the numbered sources below. "
    "Cite the sources you use by their numbers in square brackets, like [1] or [2]. If the "
    "sources do not contain the answer, say that you do not know. Be brief: a few sentences."
)


@dataclass(frozen=True)
class Sources:
    sources: list[dict[str, Any]]


@dataclass(frozen=True)
class Delta:
    text: str
    replace: bool = False  # this text replaces everything streamed so far


@dataclass(frozen=True)
class Done:
    answer: str
    sources: list[dict[str, Any]]
    mode: str  # "model" | "endpoint" | "extractive"
    note: str = ""  # why the answer is extractive, when a generator was asked first


Event = Sources | Delta | Done


@dataclass
class ChatContext:
    """What the user is looking at in the explorer (every field optional)."""

    model: str | None = None
    prompt: str | None = None
    view: str | None = None
    layer: int | None = None
    interventions: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, value: ChatContext | Mapping[str, Any] | None) -> ChatContext:
        if value is None:
            return cls()
        if isinstance(value, ChatContext):
            return value
        return cls(
            **{k: value.get(k) for k in ("model", "prompt", "view", "layer")},
            interventions=list(value.get("interventions") or []),
        )

    def describe(self) -> str:
        """One paragraph for the prompt ('' when nothing is known)."""
        parts = []
        if self.model:
            parts.append(f"model {self.model}")
        if self.view:
            parts.append(f"the {self.view} view")
        if self.prompt:
            p = self.prompt if len(self.prompt) <= 300 else self.prompt[:300] + "…"
            parts.append(f"the prompt {json.dumps(p, ensure_ascii=False)}")
        if self.layer is not None:
            parts.append(f"layer {self.layer}")
        if self.interventions:
            iv = json.dumps(self.interventions, ensure_ascii=False, separators=(",", ":"))
            parts.append(f"interventions {iv if len(iv) <= 300 else iv[:300] + '…'}")
        return "The user is looking at " + ", ".join(parts) + "." if parts else ""


def format_sources(hits: Sequence[Hit]) -> str:
    """The numbered sources as the prompt shows them."""
    blocks = []
    for i, h in enumerate(hits, 1):
        c = h.chunk
        where = f"{c.title} — {c.heading}" if c.heading else c.title
        text = plain_text(c.text).strip()
        if len(text) > MAX_SOURCE_CHARS:
            text = text[:MAX_SOURCE_CHARS] + "…"
        blocks.append(f"[{i}] {where}\n{text}")
    return "\n\n".join(blocks)


def _turns(history: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The last turns as alternating user/assistant messages, starting with the user."""
    out: list[dict[str, str]] = []
    for turn in list(history)[-MAX_HISTORY:]:
        role = "assistant" if turn.get("role") == "assistant" else "user"
        text = str(turn.get("text") or turn.get("content") or "").strip()[:MAX_TURN_CHARS]
        if not text:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + text
        else:
            out.append({"role": role, "content": text})
    while out and out[0]["role"] != "user":
        out.pop(0)
    if out and out[-1]["role"] == "user":  # the question follows: keep the turns alternating
        out.pop()
    return out


def build_messages(
    question: str,
    hits: Sequence[Hit],
    context: ChatContext | Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, str]] = (),
) -> list[dict[str, str]]:
    """The chat messages a generator gets: instructions + sources, the turns, the question."""
    system = SYSTEM
    about = ChatContext.of(context).describe()
    if about:
        system += "\n\n" + about
    system += "\n\nSources:\n\n" + format_sources(hits)
    return [
        {"role": "system", "content": system},
        *_turns(history),
        {"role": "user", "content": question.strip()},
    ]


_SENTENCE = re.compile(r"(?<!\bal\.)(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def _sentences(markdown: str) -> list[str]:
    """Readable sentences of a passage: no code blocks or table rows, one line each."""
    keep, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or line.lstrip().startswith("|"):
            keep.append("")
            continue
        keep.append(line)
    out = []
    for para in re.split(r"\n\s*\n", "\n".join(keep)):
        text = " ".join(plain_text(para).split())
        out += [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 4]
    return out


def extractive_answer(question: str, hits: Sequence[Hit], index: Index, n: int = 3) -> str:
    """The ``n`` sentences of the top passages that best match the question, each cited."""
    if not hits:
        return "The knowledge base has nothing on this question."
    want = set(terms(question))
    scored = []
    for src, h in enumerate(hits[:3], 1):
        for pos, sentence in enumerate(_sentences(h.chunk.text)):
            overlap = sum(index.idf(t) for t in set(terms(sentence)) & want)
            scored.append((overlap - 0.1 * src - 0.01 * pos, src, pos, sentence))
    if not scored:
        return EXTRACTIVE_LABEL + f"\n\n- see {hits[0].chunk.title} [1]"
    best = sorted(scored, reverse=True)[:n]
    best.sort(key=lambda s: (s[1], s[2]))
    lines = [f"- {sentence} [{src}]" for _, src, _, sentence in best]
    return EXTRACTIVE_LABEL + "\n\n" + "\n".join(lines)


def grounded(text: str, hits: Sequence[Hit], question: str) -> str:
    """'' if ``text`` passes the grounding check, else why it fails.

    The check: at least three words; at least half of its content words occur in the sources
    or the question; at most a quarter of its 4-grams of content words are repeats (small
    models loop); it cites at least one source, and every [n] it cites exists. An answer
    that cites nothing cannot be checked against the knowledge base, so it is not shown as one.
    """
    words = terms(text)
    if len(text.split()) < 3:
        return "the generated answer was empty"
    support = set(terms(question))
    for h in hits:
        support |= set(terms(h.chunk.indexed_text()))
    if words and sum(w in support for w in words) / len(words) < 0.5:
        return "the generated answer did not stay close to the sources"
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if len(grams) >= 12 and 1 - len(set(grams)) / len(grams) > 0.25:
        return "the generated answer repeated itself"
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    if any(n < 1 or n > len(hits) for n in cited):
        return "the generated answer cited a source that does not exist"
    if not cited:
        return "the generated answer cited none of the sources"
    return ""


def answer(
    question: str,
    context: ChatContext | Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, str]] = (),
    generator: Generator | None = None,
    *,
    index: Index | None = None,
    k: int = TOP_K,
    retrieve_only: bool = False,
) -> Iterator[Event]:
    """Answer ``question`` from the knowledge base: Sources, then Delta…, then Done.

    ``generator`` None (or ``retrieve_only``) gives the extractive answer at once.
    """
    index = index if index is not None else Index.load_or_build()
    hits = index.search(question, k)
    sources = [h.source() for h in hits]
    yield Sources(sources)
    note = ""
    if generator is not None and not retrieve_only and hits:
        streamed: list[str] = []
        try:
            for piece in generator.stream(build_messages(question, hits, context, history)):
                streamed.append(piece)
                yield Delta(piece)
            text = "".join(streamed).strip()
            note = grounded(text, hits, question)
        except GenerationError as exc:
            text, note = "", str(exc)
        if not note:
            yield Done(text, sources, generator.mode)
            return
        note = f"{note}; showing the best passages instead"
    text = extractive_answer(question, hits, index)
    if note:
        text = f"({note}.)\n\n{text}"
    yield Delta(text, replace=bool(note))
    yield Done(text, sources, "extractive", note)


def collect(events: Iterator[Event]) -> Done:
    """The final event of :func:`answer` (for callers that do not stream)."""
    done = None
    for event in events:
        if isinstance(event, Done):
            done = event
    assert done is not None
    return done


def generator_for(model: Any = None, endpoint: Any = None) -> Generator | None:
    """Who answers: the configured endpoint (argument, else ``LAYERSCOPE_CHAT_URL``), else
    ``model`` (a LensModel or Model) in its own chat format, else nobody (extractive)."""
    from layerscope.learn.endpoint import EndpointConfig, EndpointGenerator
    from layerscope.learn.generate import ModelGenerator

    config = endpoint if endpoint is not None else EndpointConfig.from_env()
    if config is not None:
        return EndpointGenerator(config)
    if model is not None:
        return ModelGenerator(model)
    return None
