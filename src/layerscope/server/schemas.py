"""Every request and frame of the WebSocket protocol and the REST API, typed in one place.

Frames are JSON objects with a ``type``; a client request carries a ``req`` number that every
frame answering it echoes. Token ids travel as integers: the text of each id is sent once per
connection in a ``vocab`` delta ({str(id): text}) on the first frame that mentions it.
The README's protocol section is the prose version.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_PROMPT_CHARS = 20_000
MAX_GENERATE = 256

Vocab = dict[str, str]
"""Token table delta: str(token id) -> readable token text."""


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- client -> server


class TraceRequest(_Frame):
    """Trace a prompt (optionally generating a reply) and stream tokens, then lens layers."""

    type: Literal["trace"] = "trace"
    req: int = 0
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    generate: int = Field(0, ge=0, le=MAX_GENERATE)
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_k: int | None = Field(None, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    lens_top_k: int = Field(5, ge=1, le=20)


class HeadsRequest(_Frame):
    """Per-head direct logit contributions at one position of a stored trace."""

    type: Literal["heads"] = "heads"
    req: int = 0
    trace_id: str
    position: int = Field(ge=0)
    target_id: int | None = Field(None, ge=0)
    k: int = Field(5, ge=1, le=20)


class CellRequest(_Frame):
    """The full top-k of one (layer, position) cell of a stored trace."""

    type: Literal["cell"] = "cell"
    req: int = 0
    trace_id: str
    layer: int = Field(ge=0)
    position: int = Field(ge=0)
    k: int = Field(20, ge=1, le=100)


class PcaRequest(_Frame):
    """2-D PCA trajectories of the residual vectors of some positions through all layers."""

    type: Literal["pca"] = "pca"
    req: int = 0
    trace_id: str
    positions: list[int] = Field(min_length=1, max_length=16)
    normed: bool = True


class PatchRequest(_Frame):
    """Patching sweep: the clean residual into the corrupted run at every (layer, position)."""

    type: Literal["patch"] = "patch"
    req: int = 0
    clean: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    corrupted: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    answer_id: int | None = Field(None, ge=0)


class PatchedTraceRequest(_Frame):
    """Trace a sweep's corrupted prompt with one cell patched; streams like ``trace``."""

    type: Literal["patched_trace"] = "patched_trace"
    req: int = 0
    patch_id: str
    layer: int = Field(ge=0)
    position: int = Field(ge=0)
    lens_top_k: int = Field(5, ge=1, le=20)


class EarlyExitRequest(_Frame):
    """Greedy generation that reads the next token from the layer-``layer`` lens."""

    type: Literal["early_exit"] = "early_exit"
    req: int = 0
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    chat: bool = False
    layer: int = Field(ge=0)
    generate: int = Field(16, ge=1, le=64)


ClientFrame = Annotated[
    TraceRequest
    | HeadsRequest
    | CellRequest
    | PcaRequest
    | PatchRequest
    | PatchedTraceRequest
    | EarlyExitRequest,
    Field(discriminator="type"),
]
client_frame = TypeAdapter(ClientFrame)


# ---------------------------------------------------------------- server -> client


class ModelSummary(_Frame):
    name: str
    family: str
    n_layers: int  # lens layers: blocks + 1
    n_blocks: int  # transformer blocks
    n_heads: int
    d_model: int
    vocab_size: int
    context_length: int
    n_params: int


class HelloFrame(_Frame):
    """First frame of every connection."""

    type: Literal["hello"] = "hello"
    session: str
    model: ModelSummary
    max_generate: int = MAX_GENERATE


class StartFrame(_Frame):
    """A trace was accepted: the prompt's tokens (generated ones follow as ``token`` frames)."""

    type: Literal["start"] = "start"
    req: int
    n_layers: int
    layers: list[str]
    tokens: list[int]
    n_prompt: int
    vocab: Vocab
    patched: list[int] | None = None  # [layer, position] for a patched run


class TokenFrame(_Frame):
    """One generated token, as soon as it is produced."""

    type: Literal["token"] = "token"
    req: int
    position: int
    id: int
    vocab: Vocab


class LayerFrame(_Frame):
    """The lens of one layer at every position ([T] or [T][k] arrays)."""

    type: Literal["layer"] = "layer"
    req: int
    layer: int
    top_ids: list[list[int]]
    top_probs: list[list[float]]
    final_rank: list[int]
    final_prob: list[float]
    next_rank: list[int]  # -1 where unknown (last position)
    next_prob: list[float | None]  # null where unknown
    entropy: list[float]
    kl_final: list[float]
    vocab: Vocab


class DoneFrame(_Frame):
    """The trace is complete and stored under ``trace_id``."""

    type: Literal["done"] = "done"
    req: int
    trace_id: str
    tokens: list[int]
    n_prompt: int
    lock_in: list[int]
    timings: dict[str, float]  # seconds: generate, lens, total, ... plus "server"
    bytes_sent: int  # bytes of this stream's frames, this one excluded
    trace_bytes: int  # server memory the stored trace uses


class ErrorFrame(_Frame):
    """A request failed; the connection and server stay usable."""

    type: Literal["error"] = "error"
    req: int | None = None
    code: Literal["bad_request", "busy", "not_found", "internal"]
    message: str


class HeadsFrame(_Frame):
    """Direct logit contribution of each head (layers x heads) to ``target_id`` at ``position``."""

    type: Literal["heads"] = "heads"
    req: int
    trace_id: str
    position: int
    target_id: int
    contrib: list[list[float]]  # [L][H]
    top_ids: list[list[list[int]]]  # [L][H][k] tokens each head pushes up most
    vocab: Vocab


class CellFrame(_Frame):
    type: Literal["cell"] = "cell"
    req: int
    trace_id: str
    layer: int
    position: int
    ids: list[int]
    probs: list[float]
    vocab: Vocab


class PcaFrame(_Frame):
    type: Literal["pca"] = "pca"
    req: int
    trace_id: str
    positions: list[int]
    coords: list[list[list[float]]]  # [layers][positions][2]
    explained: list[float]  # variance ratio of the two components


class PatchFrame(_Frame):
    """Result of a patching sweep: probability of the clean answer with each cell patched."""

    type: Literal["patch"] = "patch"
    req: int
    patch_id: str
    clean: list[int]
    corrupted: list[int]
    answer_id: int
    p_clean: float
    p_corrupted: float
    prob: list[list[float]]  # [layers][positions]
    restored: list[list[float]]  # (prob - p_corrupted) / (p_clean - p_corrupted)
    vocab: Vocab


class EarlyExitFrame(_Frame):
    type: Literal["early_exit"] = "early_exit"
    req: int
    layer: int
    n_layers: int
    prompt: list[int]
    early: list[int]  # tokens generated by the first ``layer`` layers
    full: list[int]  # tokens the whole model generates
    vocab: Vocab


ServerFrame = Annotated[
    HelloFrame
    | StartFrame
    | TokenFrame
    | LayerFrame
    | DoneFrame
    | ErrorFrame
    | HeadsFrame
    | CellFrame
    | PcaFrame
    | PatchFrame
    | EarlyExitFrame,
    Field(discriminator="type"),
]
server_frame = TypeAdapter(ServerFrame)


# ---------------------------------------------------------------- REST


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    busy: bool
    pending: int
    traces: int
    trace_bytes: int


class ModelsResponse(BaseModel):
    loaded: ModelSummary
    available: list[str]
