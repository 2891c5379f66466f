"""Who writes a chat answer: the loaded model (its own chat format), streamed as text.

A generator has a ``mode`` (the ``ask_done`` frame's ``mode``) and ``stream(messages)``, which
yields the reply's text in pieces and raises :class:`GenerationError` when it cannot answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from layerscope.errors import LayerscopeError


class GenerationError(LayerscopeError):
    """A generator could not produce an answer (the chat falls back to an extractive one)."""


class Generator(Protocol):
    mode: str

    def stream(self, messages: Sequence[dict[str, str]]) -> Iterator[str]: ...


class ModelGenerator:
    """The model's own chat format (``tokenizer.encode_chat``), greedy by default, streamed;
    no 4-gram of tokens is generated twice (``no_repeat_ngram``).

    Stops at the tokenizer's stop ids or after ``max_new_tokens``. Text is decoded from all the
    ids so far, so a character split across tokens is sent once it is complete.
    """

    mode = "model"

    def __init__(
        self,
        model,
        *,
        max_new_tokens: int = 200,
        temperature: float = 0.0,
        no_repeat_ngram: int | None = 4,
    ) -> None:
        from layerscope.engine.model import lens_model_of

        self.model = lens_model_of(model)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.no_repeat_ngram = no_repeat_ngram  # small models loop when greedy

    def stream(self, messages: Sequence[dict[str, str]]) -> Iterator[str]:
        from layerscope.engine.decoding.stream import stream_tokens

        tok = self.model.tokenizer
        try:
            ids = tok.encode_chat(list(messages))
        except LayerscopeError as exc:
            raise GenerationError(f"the model cannot chat: {exc}") from None
        room = self.model.info.context_length - len(ids)
        if room < 16:
            raise GenerationError(
                f"the question and its sources ({len(ids)} tokens) do not fit the model's "
                f"context of {self.model.info.context_length} tokens"
            )
        out: list[int] = []
        sent = ""
        for token in stream_tokens(
            self.model,
            ids,
            min(self.max_new_tokens, room),
            temperature=self.temperature,
            no_repeat_ngram=self.no_repeat_ngram,
        ):
            out.append(token)
            text = tok.decode(out)
            if text.endswith("\ufffd"):
                continue  # an incomplete character: wait for the rest
            if text.startswith(sent) and len(text) > len(sent):
                yield text[len(sent) :]
                sent = text
        text = tok.decode(out)
        if text.startswith(sent) and len(text) > len(sent):
            yield text[len(sent) :]
