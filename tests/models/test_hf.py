"""Every HF family: captured states match the family's own forward pass, and the lens is exact."""

from __future__ import annotations

import pytest
import torch

import layerscope
from layerscope.engine.capture import capture
from layerscope.engine.interventions import Ablate
from layerscope.errors import ModelLoadError, ModelNotFoundError
from layerscope.models.hf import _escape_partial_utf8
from tiny import FAMILIES, save_tiny, tiny_model, tiny_tokenizer

PROMPT = "The capital of France is Paris. Hello world"


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param)


@pytest.fixture(scope="module")
def ids(model):
    return model.tokenizer.encode(PROMPT)


def hf_reference(model, ids):
    with torch.inference_mode():
        return model.hf(torch.tensor([ids]), output_hidden_states=True, use_cache=False)


def test_final_lens_layer_equals_model_logits(model, ids):
    trace = model.trace(ids=ids)
    ref = hf_reference(model, ids).logits[0]
    torch.testing.assert_close(trace.layer_logits(model.info.n_blocks), ref, atol=1e-5, rtol=1e-5)
    assert trace.lens.top_ids[-1, :, 0].tolist() == ref.argmax(-1).tolist()


def test_captured_states_equal_reference_hidden_states(model, ids):
    cap = capture(model, ids)
    hidden = hf_reference(model, ids).hidden_states
    n = model.info.n_blocks
    assert cap.resid.shape == (n + 1, len(ids), model.info.d_model)
    for layer in range(n):  # h_0 .. h_{L-1} are the raw streams
        torch.testing.assert_close(cap.resid[layer], hidden[layer][0], atol=1e-5, rtol=1e-5)
    # HF's last hidden state already has the final norm applied; ours is the raw stream.
    torch.testing.assert_close(model.final_norm(cap.resid[n]), hidden[n][0], atol=1e-5, rtol=1e-5)


def test_attention_is_a_causal_distribution(model, ids):
    attn = capture(model, ids).attn
    n_tok = len(ids)
    assert attn.shape == (model.info.n_blocks, model.info.n_heads, n_tok, n_tok)
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:-1]), atol=1e-5, rtol=0)
    future = torch.triu(torch.ones(n_tok, n_tok, dtype=torch.bool), diagonal=1)
    assert attn[..., future].abs().max() == 0


def test_head_outputs_reproduce_the_output_projection(model, ids):
    cap = capture(model, ids)
    for layer in range(model.info.n_blocks):
        concat = cap.head_out[layer].reshape(len(ids), -1)
        proj = model.head_out_proj(layer)
        with torch.inference_mode():
            via_module = proj(concat)
        bias = getattr(proj, "bias", None)
        via_weight = concat @ model.head_out_weight(layer).T + (0 if bias is None else bias)
        torch.testing.assert_close(via_module, via_weight, atol=1e-5, rtol=1e-5)


def test_block_output_is_input_plus_attention_and_mlp_for_sequential_blocks(ids):
    # Llama-style blocks: h_{l+1} = h_l + attn + mlp; the MLP hook sees the mlp term.
    model = tiny_model("llama")
    cap = capture(model, ids)
    for layer in range(model.info.n_blocks):
        attn = cap.head_out[layer].reshape(len(ids), -1) @ model.head_out_weight(layer).T
        rebuilt = cap.resid[layer] + attn + cap.mlp_out[layer]
        torch.testing.assert_close(rebuilt, cap.resid[layer + 1], atol=1e-4, rtol=1e-4)


def test_kv_cached_generation_equals_one_full_pass(model, ids):
    trace = model.trace(ids=ids, generate=6)
    assert len(trace.ids) == len(ids) + 6 or trace.ids[-1] in model.tokenizer.stop_ids
    full = capture(model, trace.ids)
    torch.testing.assert_close(trace.capture.resid, full.resid, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(trace.capture.attn, full.attn, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(trace.capture.head_out, full.head_out, atol=1e-4, rtol=1e-4)
    # greedy: each generated token is the final layer's argmax at the previous position
    final_top = trace.lens.top_ids[-1, :, 0]
    for pos in range(len(ids), len(trace.ids)):
        assert trace.ids[pos] == final_top[pos - 1]


def test_an_intervention_replaces_values(ids):
    model = tiny_model("llama")
    cap = capture(model, ids, interventions=[Ablate(point="head_out", block=1)])
    assert cap.head_out[1].abs().max() == 0
    # with layer 1's heads silenced, h_2 = h_1 + mlp(h_1) only
    torch.testing.assert_close(cap.resid[2], cap.resid[1] + cap.mlp_out[1], atol=1e-5, rtol=1e-5)


def test_chat_template_and_stop_ids():
    model = tiny_model("llama")
    ids = model.tokenizer.encode_chat([{"role": "user", "content": "Hello"}])
    text = model.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\nHello<|im_end|>") and text.endswith("assistant\n")
    assert tiny_tokenizer().convert_tokens_to_ids("<|im_end|>") in model.tokenizer.stop_ids


def test_partial_utf8_token_text_is_escaped():
    assert _escape_partial_utf8("Ã") == "\\xc3"
    assert _escape_partial_utf8("Ġcat") == " cat"


def test_load_local_directory(tmp_path):
    path = save_tiny("qwen2", tmp_path / "tiny-qwen2")
    model = layerscope.load(str(path))
    assert model.info.family == "qwen2" and model.info.name == "tiny-qwen2"
    assert model.trace("Hello world").lens.top_ids.shape[0] == 3


def test_truncated_weights_file_is_a_clear_error(tmp_path):
    path = save_tiny("llama", tmp_path / "broken")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        layerscope.load(str(path))


def test_unknown_names_and_empty_directories(tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        layerscope.load("no-such-model")
    with pytest.raises(ModelNotFoundError, match="holds no nanochat checkpoint"):
        layerscope.load(str(tmp_path))


def test_unsupported_family_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "mamba"}')
    with pytest.raises(ModelLoadError, match="'mamba' is not supported"):
        layerscope.load(str(tmp_path))
