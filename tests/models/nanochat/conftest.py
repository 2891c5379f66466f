"""Tiny random-weight nanochat checkpoints in the real on-disk layout.

A tokenizer trained with rustbpe and exported as a tiktoken Encoding named "rustbpe" (the 9 special
tokens at the last ids) is pickled to tokenizer.pkl; ``meta_{step:06d}.json`` holds model_config;
``model_{step:06d}.pt`` stores wte in bf16 and every other tensor in fp32; ``token_bytes.pt`` holds
int32 byte lengths.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from layerscope.models.nanochat.tokenizer import SPECIAL_TOKENS, SPLIT_PATTERN

TINY = {
    "sequence_len": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_kv_head": 4,
    "n_embd": 64,
}
VOCAB_NO_SPECIAL = 291  # 256 bytes + 35 merges; + 9 specials = 300

TRAIN_TEXT = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.\n"
    "In 2025 the model read 12 books and 7 papers about transformers and attention.\n"
    "Hello, world! Hello again, world. It's a small world after all, isn't it?\n"
) * 20


def train_encoding() -> Any:
    """A rustbpe-trained tokenizer exported as a tiktoken Encoding, as nanochat does."""
    import rustbpe
    import tiktoken

    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(iter([TRAIN_TEXT]), VOCAB_NO_SPECIAL, pattern=SPLIT_PATTERN)
    ranks = {bytes(b): r for b, r in trainer.get_mergeable_ranks()}
    offset = len(ranks)
    special = {name: offset + i for i, name in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(
        name="rustbpe", pat_str=trainer.get_pattern(), mergeable_ranks=ranks, special_tokens=special
    )


def model_config(vocab_size: int, **overrides: int) -> dict[str, int]:
    return {**TINY, "vocab_size": vocab_size, **overrides}


def random_state_dict(cfg: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """nanochat's 2 + 6·n_layer tensors with random weights; wte bf16, the rest fp32."""
    g = torch.Generator().manual_seed(seed)
    d, hd = cfg["n_embd"], cfg["n_embd"] // cfg["n_head"]
    V = cfg["vocab_size"]

    def w(out: int, inp: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(out, inp, generator=g) * (scale / inp**0.5)

    sd = {"transformer.wte.weight": torch.randn(V, d, generator=g).bfloat16()}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        sd[p + "attn.c_q.weight"] = w(cfg["n_head"] * hd, d)
        sd[p + "attn.c_k.weight"] = w(cfg["n_kv_head"] * hd, d)
        sd[p + "attn.c_v.weight"] = w(cfg["n_kv_head"] * hd, d)
        sd[p + "attn.c_proj.weight"] = w(d, cfg["n_head"] * hd)
        sd[p + "mlp.c_fc.weight"] = w(4 * d, d)
        sd[p + "mlp.c_proj.weight"] = w(d, 4 * d)
    sd["lm_head.weight"] = w(V, d, scale=8.0)  # logits large enough for the softcap to matter
    return sd


def write_checkpoint(
    directory: Path,
    encoding: Any,
    *,
    step: int = 650,
    cfg: dict[str, int] | None = None,
    seed: int = 0,
    tokenizer_dir: Path | None = None,
    edit_state: Callable[[dict[str, torch.Tensor]], None] | None = None,
    edit_meta: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Write model/meta/(tokenizer, token_bytes) for one step into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = cfg or model_config(encoding.n_vocab)
    sd = random_state_dict(cfg, seed)
    if edit_state:
        edit_state(sd)
    torch.save(sd, directory / f"model_{step:06d}.pt")
    meta = {"step": step, "val_bpb": 0.8, "model_config": dict(cfg), "user_config": {}}
    if edit_meta:
        edit_meta(meta)
    (directory / f"meta_{step:06d}.json").write_text(json.dumps(meta, indent=2))
    tok_dir = tokenizer_dir or directory
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "tokenizer.pkl").write_bytes(pickle.dumps(encoding))
    lengths = [
        0
        if i in set(encoding._special_tokens.values())
        else len(encoding.decode_single_token_bytes(i))
        for i in range(encoding.n_vocab)
    ]
    torch.save(torch.tensor(lengths, dtype=torch.int32), tok_dir / "token_bytes.pt")
    return directory


@pytest.fixture(scope="session")
def encoding() -> Any:
    return train_encoding()


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory, encoding: Any) -> Path:
    """A plain checkpoint dir (shared, read-only by convention)."""
    return write_checkpoint(tmp_path_factory.mktemp("nanochat") / "d2", encoding)


@pytest.fixture(scope="session")
def tiny_model(ckpt_dir: Path) -> Any:
    from layerscope.engine.model import Model
    from layerscope.models.nanochat import load_nanochat

    return Model(load_nanochat(ckpt_dir, device="cpu"))


@pytest.fixture
def make_checkpoint(tmp_path: Path, encoding: Any) -> Callable[..., Path]:
    """Factory: ``make_checkpoint(subdir="ck", **write_checkpoint kwargs)`` under tmp_path."""

    def make(subdir: str = "ck", **kwargs: Any) -> Path:
        return write_checkpoint(tmp_path / subdir, encoding, **kwargs)

    return make


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """The builders above, for tests (importing conftest by name is fragile)."""
    return SimpleNamespace(
        model_config=model_config,
        random_state_dict=random_state_dict,
        write_checkpoint=write_checkpoint,
        train_encoding=train_encoding,
    )
