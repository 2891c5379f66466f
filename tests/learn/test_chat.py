"""The cited chat: prompt, history, grounding, extractive answers, and the model path."""

from __future__ import annotations

import re

import pytest

from layerscope.learn import chat
from layerscope.learn.chat import Delta, Done, Sources, answer, build_messages, collect
from layerscope.learn.generate import GenerationError, ModelGenerator


class Scripted:
    """A generator that streams fixed pieces (or fails), recording the messages it got."""

    mode = "model"

    def __init__(self, pieces, fail=None):
        self.pieces, self.fail, self.messages = pieces, fail, None

    def stream(self, messages):
        self.messages = messages
        yield from self.pieces
        if self.fail:
            raise GenerationError(self.fail)


QUESTION = "What does an induction head do?"
CONTEXT = {
    "model": "smollm2-135m",
    "prompt": "A B A",
    "view": "heatmap",
    "layer": 14,
    "interventions": [{"kind": "ablate", "heads": [[3, 4]]}],
}


def test_extractive_without_a_generator(small_index):
    events = list(answer(QUESTION, index=small_index))
    assert isinstance(events[0], Sources) and isinstance(events[-1], Done)
    sources, done = events[0].sources, events[-1]
    assert done.mode == "extractive" and done.sources == sources
    assert sources[0]["doc"] == "attention" and sources[0]["anchor"].startswith("induction-heads")
    assert set(sources[0]) == {"doc", "title", "heading", "anchor", "text", "score"}
    assert done.answer.startswith(chat.EXTRACTIVE_LABEL)
    assert "earlier copy" in done.answer  # the passage's best sentence is quoted
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", done.answer)}
    assert cited and cited <= set(range(1, len(sources) + 1))
    assert "".join(e.text for e in events if isinstance(e, Delta)) == done.answer


def test_retrieve_only_never_calls_the_generator(small_index):
    gen = Scripted(["never"])
    done = collect(answer(QUESTION, None, (), gen, index=small_index, retrieve_only=True))
    assert done.mode == "extractive" and gen.messages is None


def test_the_prompt_has_numbered_sources_context_and_capped_history(small_index):
    hits = small_index.search(QUESTION, 3)
    history = [{"role": "assistant", "text": "Welcome!"}]
    for i in range(10):
        history += [{"role": "user", "text": f"q{i}"}, {"role": "assistant", "text": f"a{i}"}]
    msgs = build_messages(QUESTION, hits, CONTEXT, history)
    system = msgs[0]["content"]
    assert msgs[0]["role"] == "system" and "only the numbered sources" in system
    assert "[1], [2]" in system or "[1] or [2]" in system
    assert "[1] Attention heads — Induction heads" in system and "[3]" in system
    assert "smollm2-135m" in system and "heatmap" in system and "layer 14" in system
    assert '"A B A"' in system and '"ablate"' in system
    turns = msgs[1:-1]
    assert len(turns) <= chat.MAX_HISTORY
    assert [t["content"] for t in turns] == ["q7", "a7", "q8", "a8", "q9", "a9"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3  # alternating, user first
    assert msgs[-1] == {"role": "user", "content": QUESTION}


def test_a_grounded_model_answer_is_streamed_as_is(small_index):
    pieces = ["An induction head finds an earlier copy ", "of the current token [1]."]
    gen = Scripted(pieces)
    events = list(answer(QUESTION, CONTEXT, [], gen, index=small_index))
    assert [e.text for e in events if isinstance(e, Delta)] == pieces
    done = events[-1]
    assert done.mode == "model" and done.answer == "".join(pieces) and not done.note
    assert "layer 14" in gen.messages[0]["content"]


@pytest.mark.parametrize(
    "pieces, why",
    [
        (["Bananas grow quickly in tropical gardens every summer season."], "close to"),
        (["head " * 40], "repeated"),
        (["An induction head copies the token after an earlier copy. " * 3], "repeated"),
        (["An induction head copies [7]."], "does not exist"),
        (["An induction head finds an earlier copy of the current token."], "cited none"),
        ([""], "empty"),
    ],
)
def test_an_ungrounded_answer_is_replaced_by_an_extractive_one(small_index, pieces, why):
    events = list(answer(QUESTION, None, (), Scripted(pieces), index=small_index))
    deltas = [e for e in events if isinstance(e, Delta)]
    assert deltas[-1].replace  # the client drops the streamed text
    done = events[-1]
    assert done.mode == "extractive" and why in done.note
    assert done.answer == deltas[-1].text and chat.EXTRACTIVE_LABEL in done.answer


def test_a_failing_generator_falls_back(small_index):
    gen = Scripted(["An induction"], fail="out of memory")
    done = collect(answer(QUESTION, None, (), gen, index=small_index))
    assert done.mode == "extractive" and "out of memory" in done.note


def test_model_generator_streams_the_models_own_chat_reply(tiny_llama):
    from layerscope.engine.decoding.stream import stream_tokens

    gen = ModelGenerator(tiny_llama, max_new_tokens=12)
    messages = [{"role": "user", "content": "Hello"}]
    text = "".join(gen.stream(messages))
    tok = tiny_llama.tokenizer
    ids = list(stream_tokens(tiny_llama, tok.encode_chat(messages), 12, no_repeat_ngram=4))
    assert text == tok.decode(ids) and ids


def test_the_tiny_model_cannot_fit_the_sources_so_the_answer_is_extractive(small_index, tiny_llama):
    done = collect(answer(QUESTION, CONTEXT, [], ModelGenerator(tiny_llama), index=small_index))
    assert done.mode == "extractive" and "context" in done.note
    assert done.sources[0]["doc"] == "attention"
