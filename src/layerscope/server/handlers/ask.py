"""``ask``: a question to the knowledge base's cited chatbot; sources first, then the answer,
streamed (:mod:`layerscope.learn.chat`).

The answer comes from the configured OpenAI-compatible endpoint if there is one, else from the
loaded model in its own chat format, else (and whenever those fail or stray from the sources)
it is extractive. The index loads once per server, on a background thread, on first use.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from layerscope.errors import LayerscopeError
from layerscope.learn.chat import MAX_HISTORY, Delta, Done, Sources, answer, generator_for
from layerscope.learn.index import shared_index
from layerscope.server.context import RequestContext
from layerscope.server.registry import request
from layerscope.server.schemas import MAX_PROMPT_CHARS, Frame, Request

INDEX_WAIT_S = 600.0  # the first ask after install waits while the documents are embedded


class AskContext(Frame):
    """What the user is looking at (unknown extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, max_length=200)
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    view: str | None = Field(None, max_length=100)
    layer: int | None = None
    interventions: list[dict[str, Any]] = Field(default_factory=list, max_length=64)


class AskTurn(Frame):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    text: str = Field(max_length=MAX_PROMPT_CHARS)


class AskRequest(Request):
    """A question to the knowledge base's chatbot; ``retrieve_only`` skips generation."""

    type: Literal["ask"] = "ask"
    question: str = Field(min_length=1, max_length=2_000)
    context: AskContext = Field(default_factory=AskContext)
    history: list[AskTurn] = Field(default_factory=list, max_length=100)
    retrieve_only: bool = False


class Source(Frame):
    """A cited passage: its document (slug), title, section heading and anchor, text, score."""

    doc: str
    title: str
    heading: str
    anchor: str
    text: str
    score: float


class AskSourcesFrame(Frame):
    """The passages the answer is drawn from, best first; ``[n]`` in the answer is sources[n-1]."""

    type: Literal["ask_sources"] = "ask_sources"
    req: int
    sources: list[Source]


class AskDeltaFrame(Frame):
    """A piece of the answer's text; with ``replace`` it replaces all text streamed before."""

    type: Literal["ask_delta"] = "ask_delta"
    req: int
    text: str
    replace: bool = False


class AskDoneFrame(Frame):
    """The whole answer (authoritative), its sources and who wrote it; ``note`` says why an
    answer is extractive when a model or endpoint was asked first."""

    type: Literal["ask_done"] = "ask_done"
    req: int
    answer: str
    sources: list[Source]
    mode: Literal["model", "endpoint", "extractive"]
    note: str = ""


@request(AskRequest, answers=AskDoneFrame, streams=(AskSourcesFrame, AskDeltaFrame))
def ask(ctx: RequestContext, msg: AskRequest) -> AskDoneFrame:
    try:
        index = shared_index().get(timeout=INDEX_WAIT_S)
    except TimeoutError:
        raise LayerscopeError("the knowledge base is still being indexed; ask again soon") from None
    generator = None if msg.retrieve_only else generator_for(ctx.model)
    history = [t.model_dump() for t in msg.history[-MAX_HISTORY:]]
    events = answer(
        msg.question,
        msg.context.model_dump(),
        history,
        generator,
        index=index,
        retrieve_only=msg.retrieve_only,
    )
    for event in events:
        if isinstance(event, Sources):
            ctx.emit(AskSourcesFrame(req=msg.req, sources=event.sources))
        elif isinstance(event, Delta):
            ctx.emit(AskDeltaFrame(req=msg.req, text=event.text, replace=event.replace))
            ctx.server.worker.share()  # between tokens: other clients' waiting jobs run now
        elif isinstance(event, Done):
            return AskDoneFrame(
                req=msg.req,
                answer=event.answer,
                sources=event.sources,
                mode=event.mode,
                note=event.note,
            )
    raise RuntimeError("the chat ended without an answer")
