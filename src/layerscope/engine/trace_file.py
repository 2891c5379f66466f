"""The trace file: one versioned JSON document that holds a trace exactly (no pickle).

The format (``docs/trace-format.md``) is shared by ``Trace.save`` / ``Trace.load``, the HTML export
and the web app. Arrays are base64 of their little-endian C-order bytes, so every value, NaN
included, survives; the document is written with fixed separators and key order, so save → load →
save gives the same bytes. A loaded trace has no activations and no model
(:class:`SavedTrace`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from layerscope.engine.lens import Lens
from layerscope.engine.statistics import BY_NAME, NAMES, STATISTICS
from layerscope.engine.trace import Trace
from layerscope.errors import InputError, TraceFileError

FORMAT = "layerscope-trace"
VERSION = 1
#: the conventional file extension
SUFFIX = ".lstrace.json"
#: array dtypes a document may hold (the web client decodes them into typed arrays)
DTYPES = ("int32", "float32", "float16")

ArrayLike = np.ndarray | torch.Tensor


@dataclass
class SavedTrace(Trace):
    """A trace read from a file: lens, tokens and settings, but no activations and no model.

    It keeps the file's model facts and extras, so that saving it again writes the same bytes.
    """

    model_facts: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def layer_logits(self, layer: int) -> torch.Tensor:
        """Not available: a saved trace holds no activations."""
        raise InputError(
            "this trace was loaded from a file and holds no activations or model; "
            "trace the prompt again with a model (layerscope.load().trace(...)) for this"
        )


# -- writing ----------------------------------------------------------------------------------


def save_trace(
    trace: Trace,
    path: str | os.PathLike[str],
    *,
    extras: Mapping[str, ArrayLike] | None = None,
    attention: bool = False,
) -> Path:
    """Write ``trace`` to ``path`` (conventionally ``*.lstrace.json``); returns the path.

    ``extras`` adds named arrays (int32, float32 or float16; others are converted); ``attention``
    adds the captured attention patterns as ``extras["attn"]`` (float16 [L, H, T, T]).
    """
    more = dict(extras or {})
    if attention:
        if trace.capture is None or trace.capture.attn is None:
            raise InputError("this trace holds no attention patterns to save")
        more.setdefault("attn", trace.capture.attn.to(torch.float16))
    out = Path(path)
    out.write_bytes(dumps(to_document(trace, extras=more)).encode("utf-8"))
    return out


def dumps(doc: dict[str, Any]) -> str:
    """The document as the file's text (the one serialisation, so bytes are reproducible)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=False, ensure_ascii=False) + "\n"


def to_document(trace: Trace, *, extras: Mapping[str, ArrayLike] | None = None) -> dict[str, Any]:
    """The trace as a JSON-ready document of the current format version.

    A :class:`SavedTrace`'s own extras are kept; ``extras`` adds to them (or replaces by name).
    """
    arrays = trace.lens.arrays()
    all_extras: dict[str, ArrayLike] = dict(getattr(trace, "extras", {}))
    all_extras.update(extras or {})
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model_facts(trace),
        "tokens": [int(i) for i in trace.ids],
        "n_prompt": int(trace.n_prompt),
        "layers": list(trace.layers),
        "token_text": {str(i): t for i, t in sorted(trace.token_text.items())},
        "settings": dict(trace.settings),
        "lock_in": trace.lock_in().astype(np.int64).tolist(),
        "statistics": [s.doc() for s in STATISTICS],
        "lens": {name: encode_array(a, BY_NAME[name].dtype) for name, a in arrays.items()},
        "extras": {name: encode_array(a) for name, a in all_extras.items()},
    }


def model_facts(trace: Trace) -> dict[str, Any]:
    """``{name, n_lens_layers, n_blocks, n_heads, d_model}`` of the model that made ``trace``.

    From the model when the trace holds it, else from its activations, else from the file it was
    read from; 0 where none of these says (a trace traced with ``keep_capture=False``).
    """
    saved = getattr(trace, "model_facts", None)
    if saved:
        return dict(saved)
    n_heads = d_model = 0
    if trace.model is not None:
        n_heads, d_model = trace.model.info.n_heads, trace.model.info.d_model
    elif trace.capture is not None:
        n_heads, d_model = trace.capture.head_out.shape[2], trace.capture.resid.shape[-1]
    return {
        "name": trace.model_name,
        "n_lens_layers": trace.n_lens_layers,
        "n_blocks": trace.n_lens_layers - 1,
        "n_heads": int(n_heads),
        "d_model": int(d_model),
    }


def encode_array(a: ArrayLike, dtype: str | None = None) -> dict[str, Any]:
    """``{"dtype", "shape", "data"}``: base64 of the little-endian C-order bytes."""
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        a = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    a = np.asarray(a)
    if dtype is None:
        dtype = a.dtype.name if a.dtype.name in DTYPES else _nearest_dtype(a)
    data = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return {
        "dtype": dtype,
        "shape": [int(n) for n in a.shape],
        "data": base64.b64encode(data).decode("ascii"),
    }


def _nearest_dtype(a: np.ndarray) -> str:
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        return "int32"
    if np.issubdtype(a.dtype, np.floating):
        return "float32"
    raise InputError(f"cannot save an array of dtype {a.dtype} (numbers only)")


# -- reading ----------------------------------------------------------------------------------


def load_trace(path: str | os.PathLike[str]) -> SavedTrace:
    """Read a trace file; a :class:`~layerscope.errors.TraceFileError` says what is wrong."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TraceFileError(f"cannot read the trace file {p}: {e.strerror or e}") from e
    try:
        return from_document(loads(raw))
    except TraceFileError as e:
        raise TraceFileError(f"{p}: {e}") from e


def loads(raw: bytes | str) -> Any:
    """Parse a file's text as JSON (a clear error if it is not)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise TraceFileError(f"not a layerscope trace file: not UTF-8 text ({e.reason})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceFileError(
            f"not a layerscope trace file, or a truncated one: invalid JSON at line {e.lineno} "
            f"column {e.colno} ({e.msg})"
        ) from e


def from_document(doc: Any) -> SavedTrace:
    """A :class:`SavedTrace` from a parsed document, after checking every field."""
    _check_header(doc)
    model = _field(doc, "model", dict)
    facts = {
        "name": _field(model, "name", str, "model."),
        **{k: _int_field(model, k, "model.") for k in ("n_lens_layers", "n_blocks")},
        **{k: _int_field(model, k, "model.") for k in ("n_heads", "d_model")},
    }
    ids = _int_list(doc, "tokens")
    n_prompt = _int_field(doc, "n_prompt")
    layers = _field(doc, "layers", list)
    settings = _field(doc, "settings", dict)
    token_text = _token_text(_field(doc, "token_text", dict))
    lock_in = _int_list(doc, "lock_in")
    n_layers, n_pos = len(layers), len(ids)
    if not ids:
        raise TraceFileError("'tokens' is empty")
    if not 0 < n_prompt <= n_pos:
        raise TraceFileError(f"'n_prompt' is {n_prompt}; it must be in 1..{n_pos}")
    if not all(isinstance(x, str) for x in layers) or n_layers < 1:
        raise TraceFileError("'layers' must be a non-empty list of layer names")
    if facts["n_lens_layers"] != n_layers or facts["n_blocks"] != n_layers - 1:
        raise TraceFileError(
            f"model.n_lens_layers is {facts['n_lens_layers']} and model.n_blocks "
            f"{facts['n_blocks']}, but the file has {n_layers} layers"
        )
    _check_statistics(_field(doc, "statistics", list))
    lens = _lens(_field(doc, "lens", dict), n_layers, n_pos)
    extras_doc = doc.get("extras", {})
    if not isinstance(extras_doc, dict):
        raise TraceFileError("'extras' must be an object")
    extras = {name: decode_array(v, f"extras.{name}") for name, v in extras_doc.items()}
    missing = (set(ids) | set(np.unique(lens.top_ids).tolist())) - set(token_text)
    if missing:
        raise TraceFileError(
            f"'token_text' lacks the text of token ids used in the trace: {sorted(missing)[:5]}"
        )
    if lock_in != lens.lock_in().tolist():
        raise TraceFileError("'lock_in' does not match lens.final_rank (the file was altered)")
    return SavedTrace(
        model_name=facts["name"],
        ids=ids,
        n_prompt=n_prompt,
        layers=list(layers),
        lens=lens,
        token_text=token_text,
        settings=settings,
        model_facts=facts,
        extras=extras,
    )


def decode_array(entry: Any, where: str) -> np.ndarray:
    """An array from ``{"dtype", "shape", "data"}``; ``where`` names it in errors."""
    if not isinstance(entry, dict):
        raise TraceFileError(f"{where} must be an object with dtype, shape and data")
    dtype = _field(entry, "dtype", str, f"{where}.")
    if dtype not in DTYPES:
        raise TraceFileError(f"{where}: unknown dtype {dtype!r} (expected one of {DTYPES})")
    shape = _int_list(entry, "shape", f"{where}.")
    if any(n < 0 for n in shape):
        raise TraceFileError(f"{where}: negative size in shape {shape}")
    try:
        data = base64.b64decode(_field(entry, "data", str, f"{where}."), validate=True)
    except (binascii.Error, ValueError) as e:
        raise TraceFileError(f"{where}: data is not valid base64 ({e})") from e
    dt = np.dtype(dtype).newbyteorder("<")
    want = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if len(data) != want:
        raise TraceFileError(
            f"{where}: shape {shape} of {dtype} needs {want} bytes, but the data has {len(data)}"
        )
    return np.frombuffer(data, dtype=dt).reshape(shape).astype(np.dtype(dtype))


def _check_header(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise TraceFileError("not a layerscope trace file: the document is not a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise TraceFileError(
            f"not a layerscope trace file: 'format' is {fmt!r}, expected {FORMAT!r}"
        )
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceFileError(f"'version' is {version!r}; expected a positive integer")
    if version > VERSION:
        raise TraceFileError(
            f"written by a newer layerscope (version {version}); this one reads version "
            f"{VERSION}. Upgrade layerscope to open it"
        )


def _check_statistics(declared: list[Any]) -> None:
    names = [s.get("name") if isinstance(s, dict) else None for s in declared]
    if names != list(NAMES):
        extra = [n for n in names if n not in BY_NAME]
        lacking = [n for n in NAMES if n not in names]
        raise TraceFileError(
            "the file's statistics differ from this layerscope's declaration "
            f"(missing: {lacking or 'none'}; unknown: {extra or 'none'}; expected {list(NAMES)})"
        )
    for s in declared:
        ours = BY_NAME[s["name"]].doc()
        for key in ("dtype", "shape"):
            if s.get(key) != ours[key]:
                raise TraceFileError(
                    f"statistic {s['name']!r} is declared with {key} {s.get(key)!r}; "
                    f"this layerscope has {ours[key]!r}"
                )


def _lens(doc: dict[str, Any], n_layers: int, n_pos: int) -> Lens:
    if set(doc) != set(NAMES):
        raise TraceFileError(
            f"'lens' must hold exactly the declared statistics {list(NAMES)}; "
            f"missing: {sorted(set(NAMES) - set(doc)) or 'none'}, "
            f"unknown: {sorted(set(doc) - set(NAMES)) or 'none'}"
        )
    arrays = {}
    for name in NAMES:
        stat, where = BY_NAME[name], f"lens.{name}"
        a = decode_array(doc[name], where)
        if doc[name]["dtype"] != stat.dtype:
            raise TraceFileError(f"{where}: dtype {doc[name]['dtype']}, expected {stat.dtype}")
        if a.ndim != (3 if stat.per_k else 2) or a.shape[:2] != (n_layers, n_pos):
            axes = "[layer, position, k]" if stat.per_k else "[layer, position]"
            raise TraceFileError(
                f"{where}: shape {list(a.shape)} does not match {axes} with "
                f"{n_layers} layers and {n_pos} positions"
            )
        arrays[name] = a
    if arrays["top_ids"].shape != arrays["top_probs"].shape:
        raise TraceFileError("lens.top_ids and lens.top_probs have different shapes")
    return Lens(**arrays)


def _token_text(doc: dict[str, Any]) -> dict[int, str]:
    out = {}
    for key, text in doc.items():
        if not key.isdigit() or not isinstance(text, str):
            raise TraceFileError(f"'token_text' maps token ids to text; found {key!r}: {text!r}")
        out[int(key)] = text
    return out


def _field(doc: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    if name not in doc:
        raise TraceFileError(f"the field '{prefix}{name}' is missing")
    value = doc[name]
    if not isinstance(value, kind):
        raise TraceFileError(
            f"the field '{prefix}{name}' must be of type {kind.__name__}, not "
            f"{type(value).__name__}"
        )
    return value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _int_field(doc: dict[str, Any], name: str, prefix: str = "") -> int:
    value = _field(doc, name, int, prefix)
    if not _is_int(value):
        raise TraceFileError(f"the field '{prefix}{name}' must be an integer")
    return value


def _int_list(doc: dict[str, Any], name: str, prefix: str = "") -> list[int]:
    value = _field(doc, name, list, prefix)
    if not all(_is_int(x) for x in value):
        raise TraceFileError(f"the field '{prefix}{name}' must be a list of integers")
    return value
