"""nanochat's tokenizer: a tiktoken Encoding read safely from tokenizer.pkl; its chat format."""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from layerscope.errors import InputError, MissingPackageError, ModelLoadError
from layerscope.models.base import Tokenizer

#: nanochat's special tokens, in id order at the end of the vocabulary
SPECIAL_TOKENS = (
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
)

#: GPT-4 style split pattern with 1-2 digit numbers
SPLIT_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*"
    r"|\s*[\r\n]|\s+(?!\S)|\s+"
)

_STATE_FIELDS = {"name", "pat_str", "mergeable_ranks", "special_tokens", "explicit_n_vocab"}


class _EncodingState:
    """Stand-in for ``tiktoken.core.Encoding`` while unpickling: it only records its state."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _reconstructor(cls: Any, base: Any, state: Any) -> _EncodingState:
    """Safe replacement for ``copyreg._reconstructor`` (pickle protocols 0 and 1)."""
    if cls is not _EncodingState or base is not object or state is not None:
        raise pickle.UnpicklingError("unexpected object reconstruction in tokenizer.pkl")
    return _EncodingState()


def _latin1_bytes(text: Any = "", encoding: str = "latin1") -> bytes:
    """Safe replacement for ``_codecs.encode`` / ``bytes`` (how protocols 0-2 store bytes)."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("unexpected bytes construction in tokenizer.pkl")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits a tiktoken Encoding's class reference and plain data; nothing else can be called."""

    _allowed: ClassVar[dict[tuple[str, str], Any]] = {
        ("tiktoken.core", "Encoding"): _EncodingState,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "object"): object,
        ("_codecs", "encode"): _latin1_bytes,
        ("builtins", "bytes"): _latin1_bytes,
    }

    def find_class(self, module: str, name: str) -> Any:
        module = {"copy_reg": "copyreg", "__builtin__": "builtins"}.get(module, module)  # py2 names
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"tokenizer.pkl refers to {module}.{name}, which a tiktoken Encoding never needs"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("tokenizer.pkl uses persistent ids")


def read_encoding_state(path: Path) -> dict[str, Any]:
    """The validated fields of the tiktoken Encoding pickled at ``path`` (no code runs)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelLoadError(f"cannot read tokenizer {path}: {e}") from e
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        raise ModelLoadError(f"refusing tokenizer {path}: {e}") from e
    except Exception as e:  # truncated or garbage bytes
        raise ModelLoadError(f"tokenizer {path} is not a readable pickle: {e}") from e
    if not isinstance(obj, _EncodingState) or not isinstance(obj.state, dict):
        raise ModelLoadError(f"{path} does not hold a tiktoken Encoding with its fields")
    state = obj.state
    extra = set(state) - _STATE_FIELDS
    if extra:
        raise ModelLoadError(f"{path}: unexpected Encoding fields {sorted(extra)}")
    name, pat = state.get("name"), state.get("pat_str")
    ranks, special = state.get("mergeable_ranks"), state.get("special_tokens")
    ok = (
        isinstance(name, str)
        and isinstance(pat, str)
        and isinstance(ranks, dict)
        and all(isinstance(k, bytes) and type(v) is int for k, v in ranks.items())
        and isinstance(special, dict)
        and all(isinstance(k, str) and type(v) is int for k, v in special.items())
    )
    if not ok:
        raise ModelLoadError(f"{path}: Encoding fields have unexpected types")
    return {"name": name, "pat_str": pat, "mergeable_ranks": ranks, "special_tokens": special}


def load_encoding(path: Path) -> Any:
    """A ``tiktoken.Encoding`` rebuilt from the fields of tokenizer.pkl."""
    try:
        import tiktoken
    except ImportError as e:
        raise MissingPackageError(
            "nanochat's tokenizer needs the 'tiktoken' package: pip install tiktoken"
        ) from e
    state = read_encoding_state(path)
    try:
        return tiktoken.Encoding(**state)
    except Exception as e:
        raise ModelLoadError(f"{path}: cannot build the tiktoken Encoding: {e}") from e


class NanochatTokenizer(Tokenizer):
    """Plain text = ``<|bos|>`` + encode_ordinary; chat per nanochat's conversation rendering."""

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        known = encoding.special_tokens_set
        missing = [t for t in SPECIAL_TOKENS if t not in known]
        if missing:
            raise ModelLoadError(
                f"tokenizer {encoding.name!r} lacks nanochat's special tokens {missing}"
            )
        self.special: dict[str, int] = {t: encoding.encode_single_token(t) for t in SPECIAL_TOKENS}
        self.bos_id = self.special["<|bos|>"]
        self.pad_id = self.bos_id  # nanochat separates documents with <|bos|>; it has no pad
        self.vocab_size: int = encoding.n_vocab

    @classmethod
    def from_file(cls, path: Path) -> NanochatTokenizer:
        return cls(load_encoding(path))

    def encode(self, text: str) -> list[int]:
        return [self.bos_id, *self.encoding.encode_ordinary(text)]

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        turns = _merge_system(messages)
        sp = self.special
        ids = [self.bos_id]
        for i, (role, text) in enumerate(turns):
            want = "user" if i % 2 == 0 else "assistant"
            if role != want:
                raise InputError(
                    f"chat message {i + 1} is from {role!r} but nanochat's format expects "
                    f"{want!r} here: turns alternate user / assistant, starting with user"
                )
            start, end = sp[f"<|{role}_start|>"], sp[f"<|{role}_end|>"]
            ids += [start, *self.encoding.encode_ordinary(text), end]
        if turns[-1][0] != "user":
            raise InputError("a chat must end with a user message (the assistant replies to it)")
        return [*ids, sp["<|assistant_start|>"]]

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def token_text(self, token_id: int) -> str:
        try:
            raw = self.encoding.decode_single_token_bytes(int(token_id))
        except KeyError:  # a model row the tokenizer has no token for (vocab padding)
            return f"<|id_{int(token_id)}|>"
        return raw.decode("utf-8", errors="backslashreplace")

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset({self.special["<|assistant_end|>"], self.bos_id})


def _merge_system(messages: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
    """(role, text) turns with a leading system message joined into the first user message."""
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        role, text = m.get("role"), m.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(text, str):
            raise InputError(
                f"chat message {i + 1} needs a role of system/user/assistant and a text content"
            )
        turns.append((role, text))
    if not turns:
        raise InputError("a chat needs at least one user message")
    if turns[0][0] == "system":
        if len(turns) < 2 or turns[1][0] != "user":
            raise InputError("a system message must be followed by a user message")
        turns = [("user", turns[0][1] + "\n\n" + turns[1][1]), *turns[2:]]
    if any(r == "system" for r, _ in turns):
        raise InputError("only the first chat message may be a system message")
    return turns
