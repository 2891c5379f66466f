"""Where each Hugging Face family keeps the parts the engine hooks.

This table is the only place that knows module paths per architecture; everything above it reads
a ``FamilySpec``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from operator import attrgetter

from torch import nn

from layerscope.errors import ModelLoadError


@dataclass(frozen=True)
class FamilySpec:
    """Attribute paths (relative to the HF ``*ForCausalLM``) of the hooked parts of one family."""

    blocks: str
    final_norm: str
    lm_head: str
    out_proj: str  # relative to a block: W_O (its input holds the per-head outputs)
    attn_out: str  # relative to a block: the module whose output attention adds to the stream
    mlp_down: str  # relative to a block: the MLP's down projection (its input: the neurons)
    mlp_out: str  # relative to a block: the module whose output the MLP adds to the stream
    out_proj_is_conv1d: bool = False  # GPT-2's Conv1D stores W as [in, out]
    parallel_attr: str | None = None  # config flag: attention and MLP both read resid_pre
    softcap_attr: str | None = None  # config attribute holding the final logit softcap
    needs_eager_attention: bool = False  # attention softcap is only implemented eagerly

    def get(self, root: nn.Module, path: str) -> nn.Module:
        """Resolve a dotted path; ``a|b`` tries ``a`` then ``b`` (renames across versions)."""
        *firsts, last = path.split("|")
        for candidate in firsts:
            try:
                return attrgetter(candidate)(root)
            except AttributeError:
                continue
        return attrgetter(last)(root)


_LLAMA_LIKE = FamilySpec(
    blocks="model.layers",
    final_norm="model.norm",
    lm_head="lm_head",
    out_proj="self_attn.o_proj",
    attn_out="self_attn",
    mlp_down="mlp.down_proj",
    mlp_out="mlp",
)

_GEMMA2 = FamilySpec(
    blocks="model.layers",
    final_norm="model.norm",
    lm_head="lm_head",
    out_proj="self_attn.o_proj",
    # Gemma-2 norms each sub-layer's output before adding it to the stream
    attn_out="post_attention_layernorm",
    mlp_down="mlp.down_proj",
    mlp_out="post_feedforward_layernorm",
    softcap_attr="final_logit_softcapping",
    needs_eager_attention=True,
)

FAMILIES: dict[str, FamilySpec] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _GEMMA2,
    # Gemma 3 (text): Gemma-2's sandwich norms (each sub-layer's output normed before it joins the
    # stream), q/k-norm inside attention (before W_O: head_out is unaffected), alternating sliding
    # and global layers (masking only), embeddings scaled by sqrt(d) inside the embedding module
    # (so h_0 is already scaled). No attention softcap, so SDPA is fine; the final logit softcap is
    # read from the config (None for the released models) exactly as the model applies it.
    "gemma3_text": replace(_GEMMA2, needs_eager_attention=False),
    "gpt2": FamilySpec(
        blocks="transformer.h",
        final_norm="transformer.ln_f",
        lm_head="lm_head",
        out_proj="attn.c_proj",
        attn_out="attn",
        mlp_down="mlp.c_proj",
        mlp_out="mlp",
        out_proj_is_conv1d=True,
    ),
    "gpt_neox": FamilySpec(
        blocks="gpt_neox.layers",
        final_norm="gpt_neox.final_layer_norm",
        lm_head="lm_head|embed_out",  # transformers < 5 called it embed_out
        out_proj="attention.dense",
        attn_out="attention",
        mlp_down="mlp.dense_4h_to_h",
        mlp_out="mlp",
        parallel_attr="use_parallel_residual",
    ),
}


def family_spec(model_type: str) -> FamilySpec:
    """The spec of a HF ``model_type``, or a clear error listing the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        supported = ", ".join(sorted(FAMILIES))
        raise ModelLoadError(
            f"model type {model_type!r} is not supported yet (supported: {supported})"
        ) from None
