"""The protocol's shared shapes: the frame base, the hello and error frames, and the REST bodies.

Each request type declares its own request and answer frames next to its handler
(``server/handlers/``); the registry (``server/registry.py``) gathers them into the client and
server frame unions, the JSON Schema at ``/api/protocol`` and the README's protocol tables.

Frames are JSON objects with a ``type``; a client request carries a ``req`` number that every
frame answering it echoes. Token ids travel as integers: the text of each id is sent once per
connection in a ``vocab`` delta ({str(id): text}) on the first frame that mentions it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from layerscope.server.models import ModelChoice

PROTOCOL_VERSION = 2
MAX_PROMPT_CHARS = 20_000
MAX_GENERATE = 256
MAX_ERROR_CHARS = 1_000

Vocab = dict[str, str]
"""Token table delta: str(token id) -> readable token text."""


class Frame(BaseModel):
    """Base of every request and frame: unknown fields are an error, and so are NaN and
    infinities (Python's JSON reader accepts ``NaN``/``Infinity`` literals and ``1e400``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Request(Frame):
    """Base of client requests: ``req`` is echoed by every answering frame.

    ``req`` must be a JSON integer (``"1"`` is refused: the answer would not match it), and every
    string in the request, keys included, must be valid Unicode: JSON can spell a lone surrogate
    (``"\\ud800"``) that no tokenizer, encoder or log line can take."""

    req: int = Field(0, ge=0, le=2**53, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if (where := lone_surrogate_at(data)) is not None:
            where = where if len(where) <= 80 else where[:79] + "…"
            raise ValueError(
                f"{where or 'the request'}: text is not valid Unicode (a lone surrogate such "
                "as \\ud800)"
            )
        return data


def lone_surrogate_at(value: Any) -> str | None:
    """The dotted path of the first string (or key) in ``value`` holding a lone surrogate.

    Iterative (a request may nest as deep as the JSON reader allows, in ``Any`` fields), and a
    path is spelled out only when one is found (a long list of numbers costs a few ms)."""
    stack: list[tuple[Any, tuple | None]] = [(value, None)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return _dotted(at)
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and _SURROGATE.search(k):
                    return "a field name"
                if isinstance(x, str | dict | list):
                    stack.append((x, (at, k)))
        elif isinstance(v, list):
            stack.extend((x, (at, i)) for i, x in enumerate(v) if isinstance(x, str | dict | list))
    return None


def _dotted(at: tuple | None) -> str:
    parts = []
    while at is not None:
        at, key = at
        parts.append(str(key))
    return ".".join(reversed(parts))


_SURROGATE = re.compile("[\ud800-\udfff]")


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

    @field_validator("message")
    @classmethod
    def _readable(cls, v: str) -> str:
        """At most MAX_ERROR_CHARS characters, always encodable as UTF-8 (a message may quote
        what the client sent)."""
        if len(v) > MAX_ERROR_CHARS:
            v = v[: MAX_ERROR_CHARS - 1] + "…"
        return v.encode("utf-8", "replace").decode("utf-8")


# ---------------------------------------------------------------- REST


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    busy: bool
    pending: int
    results: int  # stored results (traces, sweeps, ...)
    result_bytes: int


class ErrorDetail(BaseModel):
    """A REST error (400 bad input, 404 unknown or expired id, 503 busy): what went wrong."""

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's JSON error answers."""
    what = {400: "Bad input", 404: "Unknown or expired id", 503: "Busy: try again shortly"}
    return {code: {"model": ErrorDetail, "description": what[code]} for code in codes}


class ModelsResponse(BaseModel):
    loaded: ModelSummary
    available: list[str]  # names a ``switch_model`` request can load on this machine now
    models: list[ModelChoice]  # every known name: available or not (with why), loaded or not
