"""nanochat tokenizer: ids, chat rendering, and a tokenizer.pkl that cannot run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from layerscope.errors import InputError, ModelLoadError
from layerscope.models.nanochat.tokenizer import (
    SPECIAL_TOKENS,
    NanochatTokenizer,
    read_encoding_state,
)


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory, encoding: Any) -> NanochatTokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(encoding))
    return NanochatTokenizer.from_file(path)


def test_special_tokens_take_the_last_ids(tok: NanochatTokenizer, encoding: Any) -> None:
    n = encoding.n_vocab
    assert [tok.special[t] for t in SPECIAL_TOKENS] == list(range(n - 9, n))
    assert tok.bos_id == n - 9
    assert tok.stop_ids == {tok.special["<|assistant_end|>"], tok.bos_id}


def test_plain_text_is_bos_plus_encode_ordinary(tok: NanochatTokenizer, encoding: Any) -> None:
    text = "The quick brown fox, in 2025, isn't lazy."
    ids = tok.encode(text)
    assert ids == [tok.bos_id, *encoding.encode_ordinary(text)]
    assert tok.decode(ids[1:]) == text
    assert tok.decode(ids).startswith("<|bos|>")


def test_user_typed_special_token_stays_plain_text(tok: NanochatTokenizer, encoding: Any) -> None:
    ids = tok.encode("hi <|bos|> <|assistant_end|>")
    assert ids.count(tok.bos_id) == 1 and ids[0] == tok.bos_id
    assert set(ids[1:]).isdisjoint(tok.special.values())
    assert tok.decode(ids[1:]) == "hi <|bos|> <|assistant_end|>"


def test_chat_rendering_ids(tok: NanochatTokenizer, encoding: Any) -> None:
    sp, eo = tok.special, encoding.encode_ordinary
    msgs = [
        {"role": "user", "content": "Hello, world!"},
        {"role": "assistant", "content": "Hi. <|user_start|>"},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    want = [
        sp["<|bos|>"],
        sp["<|user_start|>"], *eo("Hello, world!"), sp["<|user_end|>"],
        sp["<|assistant_start|>"], *eo("Hi. <|user_start|>"), sp["<|assistant_end|>"],
        sp["<|user_start|>"], *eo("Why is the sky blue?"), sp["<|user_end|>"],
        sp["<|assistant_start|>"],
    ]  # fmt: skip
    assert tok.encode_chat(msgs) == want


def test_system_message_merged_into_first_user(tok: NanochatTokenizer, encoding: Any) -> None:
    sp, eo = tok.special, encoding.encode_ordinary
    ids = tok.encode_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    )
    assert ids == [
        sp["<|bos|>"], sp["<|user_start|>"], *eo("Be brief.\n\nHi there"), sp["<|user_end|>"],
        sp["<|assistant_start|>"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    "msgs",
    [
        [],
        [{"role": "assistant", "content": "x"}],
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        [{"role": "system", "content": "s"}],
        [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}],
        [{"role": "tool", "content": "a"}],
        [{"role": "user"}],
    ],
)
def test_bad_chats_are_input_errors(tok: NanochatTokenizer, msgs: list[dict[str, str]]) -> None:
    with pytest.raises(InputError):
        tok.encode_chat(msgs)


def test_token_text_keeps_partial_utf8(tok: NanochatTokenizer, encoding: Any) -> None:
    byte_id = encoding.encode_single_token(b"\xe2")
    assert tok.token_text(byte_id) == "\\xe2"
    assert tok.token_text(tok.bos_id) == "<|bos|>"


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_genuine_pickles_load(tmp_path: Path, encoding: Any, protocol: int) -> None:
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(encoding, protocol=protocol))
    state = read_encoding_state(path)
    assert state["name"] == "rustbpe" and len(state["special_tokens"]) == 9
    text = "hello world"
    assert NanochatTokenizer.from_file(path).encode(text)[1:] == encoding.encode_ordinary(text)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(ModelLoadError, match=r"refusing tokenizer .*(posix|os|nt)\.system"):
        NanochatTokenizer.from_file(path)
    assert not marker.exists()


def test_encoding_class_with_smuggled_payload_is_refused(tmp_path: Path, encoding: Any) -> None:
    """A reference to the allowed class must not become a way to call something else."""
    import tiktoken

    class Smuggle:
        def __reduce__(self) -> tuple[Any, ...]:
            return (tiktoken.core.Encoding, ("rustbpe",), {"name": "x"})

    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(Smuggle()))
    with pytest.raises(ModelLoadError):
        NanochatTokenizer.from_file(path)


@pytest.mark.parametrize("payload", [b"", b"\x80\x04garbage", pickle.dumps({"a": 1})])
def test_broken_tokenizer_files(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError):
        NanochatTokenizer.from_file(path)


def test_tokenizer_without_nanochat_specials_refused(tmp_path: Path, encoding: Any) -> None:
    import tiktoken

    plain = tiktoken.Encoding(
        name="x",
        pat_str=encoding._pat_str,
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|bos|>": 256},
    )
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(pickle.dumps(plain))
    with pytest.raises(ModelLoadError, match="user_start"):
        NanochatTokenizer.from_file(path)
