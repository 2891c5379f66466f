"""Finding and loading nanochat checkpoints, and refusing what cannot be loaded faithfully."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from layerscope.errors import ModelLoadError, ModelNotFoundError
from layerscope.models.nanochat import find_hf_cache_d32, find_local_checkpoints, load_nanochat
from layerscope.models.nanochat.checkpoint import checkpoint_files

PROMPT = "The quick brown fox"


def logits_of(model: Any, text: str = PROMPT) -> torch.Tensor:
    return model.forward(torch.tensor([model.tokenizer.encode(text)])).logits


def test_load_plain_dir(tiny_model: Any, ckpt_dir: Path) -> None:
    info = tiny_model.info
    assert (info.family, info.n_blocks, info.n_heads, info.d_model) == ("nanochat", 2, 4, 64)
    assert (info.d_head, info.vocab_size, info.context_length) == (16, 300, 64)
    assert info.n_params == 2 * 300 * 64 + 2 * 12 * 64 * 64
    assert info.extra["step"] == 650 and info.source == str(ckpt_dir)
    assert tiny_model.device == torch.device("cpu") and tiny_model.dtype == torch.float32
    assert tiny_model.logit_softcap == 15.0
    assert tiny_model.unembed_weight.shape == (300, 64)
    wte = torch.load(ckpt_dir / "model_000650.pt", weights_only=True)["transformer.wte.weight"]
    assert wte.dtype == torch.bfloat16  # stored as in the released files
    assert torch.equal(tiny_model.module.transformer.wte.weight, wte.float())


def test_newest_step_by_default_and_step_choice(make_checkpoint: Callable[..., Path]) -> None:
    d = make_checkpoint(step=100, seed=1)
    make_checkpoint(step=2000, seed=2)
    assert checkpoint_files(d)[2] == 2000
    newest = load_nanochat(d, device="cpu")
    old = load_nanochat(d, step=100, device="cpu")
    assert newest.info.extra["step"] == 2000 and old.info.extra["step"] == 100
    assert not torch.equal(logits_of(newest), logits_of(old))
    with pytest.raises(ModelNotFoundError, match="available steps: 100, 2000"):
        load_nanochat(d, step=5, device="cpu")


def test_nanochat_cache_layout(
    tmp_path: Path, encoding: Any, helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "home" / ".cache" / "nanochat"
    tok_dir = base / "tokenizer"  # nanochat keeps the tokenizer apart from the checkpoints
    helpers.write_checkpoint(
        base / "base_checkpoints" / "d32", encoding, seed=5, step=21400, tokenizer_dir=tok_dir
    )
    helpers.write_checkpoint(
        base / "chatsft_checkpoints" / "d32", encoding, seed=6, tokenizer_dir=tok_dir
    )
    assert not (base / "chatsft_checkpoints" / "d32" / "tokenizer.pkl").exists()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NANOCHAT_BASE_DIR", raising=False)
    assert find_local_checkpoints() == [
        base / "chatsft_checkpoints" / "d32",
        base / "base_checkpoints" / "d32",
    ]
    model = load_nanochat(base, device="cpu")  # a base dir resolves to the chat model first
    assert model.info.name == "nanochat-d32" and model.info.extra["step"] == 650
    assert model.info.source == str(base / "chatsft_checkpoints" / "d32")
    base_model = load_nanochat(base / "base_checkpoints", device="cpu")
    assert base_model.info.extra["step"] == 21400
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path / "elsewhere"))
    assert find_local_checkpoints() == []


def _fake_hf_cache(root: Path, encoding: Any, helpers: Any) -> Path:
    repo = root / "models--karpathy--nanochat-d32"
    rev = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / rev
    helpers.write_checkpoint(snap, encoding, step=650, seed=7)
    (repo / "blobs").mkdir()
    for f in list(snap.iterdir()):  # the hub stores blobs and links to them from snapshots
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        f.rename(blob)
        f.symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    return snap


def test_hf_cache_layout_offline(
    tmp_path: Path, encoding: Any, helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert find_hf_cache_d32() is None
    snap = _fake_hf_cache(tmp_path / "hub", encoding, helpers)
    assert find_hf_cache_d32() == snap
    model = load_nanochat(snap, device="cpu", name="nanochat-d32")
    assert model.info.name == "nanochat-d32" and model.info.extra["step"] == 650
    from layerscope.models.catalog import load

    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path / "no-nanochat-cache"))
    by_name = load("nanochat-d32", device="cpu")
    assert by_name.info.name == "nanochat-d32" and by_name.info.source == str(snap)


def test_compile_prefix_stripped(make_checkpoint: Callable[..., Path], tiny_model: Any) -> None:
    def prefix(sd: dict[str, torch.Tensor]) -> None:
        for k in list(sd):
            sd["_orig_mod." + k] = sd.pop(k)

    model = load_nanochat(make_checkpoint(edit_state=prefix), device="cpu")
    assert torch.equal(logits_of(model), logits_of(tiny_model))


def test_padded_vocab_is_supported(make_checkpoint: Callable[..., Path], tiny_model: Any) -> None:
    """2025-12: rows padded to a multiple of 64; their logits are sliced away, so drop them."""

    def pad(sd: dict[str, torch.Tensor]) -> None:
        for k in ("transformer.wte.weight", "lm_head.weight"):
            extra = torch.randn(320 - 300, 64).to(sd[k].dtype) * 50
            sd[k] = torch.cat([sd[k], extra])

    model = load_nanochat(make_checkpoint(edit_state=pad), device="cpu")
    assert model.unembed_weight.shape == (300, 64)
    assert torch.equal(logits_of(model), logits_of(tiny_model))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.update(extra_bias=torch.zeros(3)), "unknown keys: extra_bias"),
        (lambda sd: sd.pop("transformer.h.1.mlp.c_fc.weight"), "missing keys: transformer.h.1.mlp"),
        (
            lambda sd: sd.update({"transformer.h.2.attn.c_q.weight": torch.zeros(64, 64)}),
            "unknown keys: transformer.h.2.attn.c_q.weight",
        ),
        (
            lambda sd: sd.update(resid_lambdas=torch.ones(2), x0_lambdas=torch.zeros(2)),
            r"later nanochat version.*residual / x0 lambdas",
        ),
        (
            lambda sd: sd.update({"value_embeds.1.weight": torch.zeros(300, 64)}),
            r"later nanochat version.*value embeddings",
        ),
        (
            lambda sd: sd.update({"transformer.h.0.attn.ve_gate.weight": torch.zeros(4, 32)}),
            r"later nanochat version.*value-embedding gates",
        ),
        (
            lambda sd: sd.update({"smear_gate.weight": torch.zeros(1, 24)}),
            r"later nanochat version.*smearing",
        ),
        (lambda sd: sd.update(backout_lambda=torch.zeros(())), r"later.*backout"),
        (
            lambda sd: sd.update({"lm_head.weight": torch.zeros(300, 32)}),
            r"wrong shape: lm_head.weight \(300, 32\)",
        ),
    ],
)
def test_bad_state_dicts_refused(
    make_checkpoint: Callable[..., Path], edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_nanochat(make_checkpoint(edit_state=edit), device="cpu")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["model_config"].update(window_pattern="SSSL"), "sliding-window"),
        (lambda m: m["model_config"].update(mystery=1), "fields layerscope does not know: mystery"),
        (lambda m: m["model_config"].pop("n_head"), "lacks n_head"),
        (lambda m: m["model_config"].update(n_head=5), "n_embd 64 is not n_head 5"),
        (lambda m: m.pop("model_config"), "no 'model_config'"),
    ],
)
def test_bad_meta_refused(
    make_checkpoint: Callable[..., Path], edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_nanochat(make_checkpoint(edit_meta=edit), device="cpu")


def test_truncated_weights(make_checkpoint: Callable[..., Path]) -> None:
    d = make_checkpoint()
    f = d / "model_000650.pt"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_nanochat(d, device="cpu")


def test_weights_with_code_refused(make_checkpoint: Callable[..., Path], tmp_path: Path) -> None:
    d = make_checkpoint()
    torch.save({"x": torch.nn.Linear(2, 2)}, d / "model_000650.pt")  # needs full unpickling
    with pytest.raises(ModelLoadError, match="cannot load weights"):
        load_nanochat(d, device="cpu")


def test_unreadable_meta_and_missing_files(make_checkpoint: Callable[..., Path]) -> None:
    d = make_checkpoint()
    (d / "meta_000650.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"meta_000650\.json"):
        load_nanochat(d, device="cpu")
    (d / "meta_000650.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"meta_000650\.json"):
        load_nanochat(d, device="cpu")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such"):
        load_nanochat(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="holds no nanochat checkpoint"):
        load_nanochat(tmp_path)


def test_missing_tokenizer(make_checkpoint: Callable[..., Path], monkeypatch: Any) -> None:
    monkeypatch.setenv("NANOCHAT_BASE_DIR", "/nonexistent")
    d = make_checkpoint()
    (d / "tokenizer.pkl").unlink()
    with pytest.raises(ModelNotFoundError, match=r"no tokenizer\.pkl"):
        load_nanochat(d, device="cpu")


def test_meta_is_json_with_model_config(ckpt_dir: Path) -> None:
    meta = json.loads((ckpt_dir / "meta_000650.json").read_text())
    assert set(meta["model_config"]) == {
        "sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd",
    }  # fmt: skip


def test_deepest_tag_chosen_without_d32(make_checkpoint: Callable[..., Path]) -> None:
    make_checkpoint("base/chatsft_checkpoints/d20", seed=1)
    make_checkpoint("base/chatsft_checkpoints/d26", seed=2)
    d = make_checkpoint("base/chatsft_checkpoints/d8", seed=3).parent.parent
    assert load_nanochat(d, device="cpu").info.name == "nanochat-d26"
