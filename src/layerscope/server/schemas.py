"""The protocol's shared shapes: the frame base, the hello and error frames, and the REST bodies.

Each request type declares its own request and answer frames next to its handler
(``server/handlers/``); the registry (``server/registry.py``) gathers them into the client and
server frame unions, the JSON Schema at ``/api/protocol`` and the README's protocol tables.

Frames are JSON objects with a ``type``; a client request carries a ``req`` number that every
frame answering it echoes. Token ids travel as integers: the text of each id is sent once per
connection in a ``vocab`` delta ({str(id): text}) on the first frame that mentions it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from layerscope.server.models import ModelChoice

PROTOCOL_VERSION = 2
MAX_PROMPT_CHARS = 20_000
MAX_GENERATE = 256

Vocab = dict[str, str]
"""Token table delta: str(token id) -> readable token text."""


class Frame(BaseModel):
    """Base of every request and frame: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class Request(Frame):
    """Base of client requests: ``req`` is echoed by every answering frame."""

    req: int = Field(0, ge=0, le=2**53)


class ModelSummary(Frame):
    name: str
    family: str
    n_lens_layers: int  # h_0 .. h_L: blocks + 1
    n_blocks: int  # transformer blocks
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    vocab_size: int
    context_length: int
    n_params: int
    parallel_residual: bool


class RequestInfo(Frame):
    """What a client needs to know of one request type."""

    streams: bool  # frames arrive before the terminal one
    frames: list[str]  # every frame type that may answer it
    terminal: list[str]  # frame types that end it (``error`` ends every request too)


class HelloFrame(Frame):
    """First frame of every connection: the model, and what the server speaks."""

    type: Literal["hello"] = "hello"
    session: str
    protocol: int = PROTOCOL_VERSION
    model: ModelSummary
    max_generate: int = MAX_GENERATE
    requests: dict[str, RequestInfo]
    statistics: list[dict[str, Any]]  # the lens statistics every layer frame carries, in order
    points: dict[str, str]  # hook point name -> what it holds (for interventions)


class ErrorFrame(Frame):
    """A request failed; the connection and server stay usable."""

    type: Literal["error"] = "error"
    req: int | None = None
    code: Literal["bad_request", "busy", "not_found", "unavailable", "internal"]
    message: str


# ---------------------------------------------------------------- REST


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    busy: bool
    pending: int
    results: int  # stored results (traces, sweeps, ...)
    result_bytes: int


class ModelsResponse(BaseModel):
    loaded: ModelSummary
    available: list[str]  # names a ``switch_model`` request can load on this machine now
    models: list[ModelChoice]  # every known name: available or not (with why), loaded or not
