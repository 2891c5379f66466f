"""Adapter for Hugging Face causal LMs (Llama/SmolLM, Qwen2, Gemma, Gemma-2, Gemma 3, GPT-2,
GPT-NeoX)."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from layerscope.errors import InputError, ModelLoadError, ModelNotFoundError
from layerscope.models.base import (
    ForwardOutput,
    HookSite,
    LensModel,
    ModelInfo,
    StopForward,
    Tokenizer,
)
from layerscope.models.device import default_device, dtype_for
from layerscope.models.families import FamilySpec, family_spec


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2 byte-level BPE's char -> byte map: printable bytes stand for themselves, the other
    bytes are shifted to code points 256, 257, ... in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + shifted)] = b
            shifted += 1
    return mapping


_BYTE_LEVEL = _byte_level_alphabet()


def _escape_partial_utf8(raw: str) -> str | None:
    """A byte-level token's bytes as text with invalid UTF-8 escaped (``\\xe2``), else None."""
    if not raw or any(ch not in _BYTE_LEVEL for ch in raw):
        return None
    return bytes(_BYTE_LEVEL[ch] for ch in raw).decode("utf-8", errors="backslashreplace")


class HFTokenizer(Tokenizer):
    """A ``transformers`` tokenizer behind layerscope's tokenizer interface."""

    def __init__(self, tok: Any, extra_stop_ids: Sequence[int] = ()) -> None:
        self._tok = tok
        self.bos_id = tok.bos_token_id if self._adds_bos() else None
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        stops = {i for i in (tok.eos_token_id, *extra_stop_ids) if i is not None}
        self._stop_ids = frozenset(stops)
        self._text_cache: dict[int, str] = {}

    def _adds_bos(self) -> bool:
        bos = self._tok.bos_token_id
        return bos is not None and self._tok("a")["input_ids"][:1] == [bos]

    def encode(self, text: str) -> list[int]:
        return list(self._tok(text)["input_ids"])

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        if not getattr(self._tok, "chat_template", None):
            raise InputError("this model has no chat template; trace it as plain text instead")
        out = self._tok.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True
        )
        if hasattr(out, "keys"):  # transformers >= 5 returns a BatchEncoding
            out = out["input_ids"]
        return [int(i) for i in out]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids))

    def token_text(self, token_id: int) -> str:
        text = self._text_cache.get(token_id)
        if text is None:
            text = self._tok.decode([token_id])
            if "\ufffd" in text:  # part of a UTF-8 sequence: show its bytes escaped
                raw = self._tok.convert_ids_to_tokens(token_id)
                if isinstance(raw, str):
                    text = _escape_partial_utf8(raw) or raw
            self._text_cache[token_id] = text
        return text

    @property
    def stop_ids(self) -> frozenset[int]:
        return self._stop_ids


class HFLensModel(LensModel):
    """Any supported ``*ForCausalLM`` seen through layerscope's hook points."""

    def __init__(self, hf_model: nn.Module, tokenizer: Tokenizer, *, name: str, source: str = ""):
        self.hf = hf_model.eval()
        cfg = hf_model.config
        self.spec: FamilySpec = family_spec(cfg.model_type)
        self.tokenizer = tokenizer
        param = next(hf_model.parameters())
        self.device = param.device
        self.dtype = param.dtype
        self._blocks = list(self.spec.get(hf_model, self.spec.blocks))
        self._norm = self.spec.get(hf_model, self.spec.final_norm)
        self._lm_head = self.spec.get(hf_model, self.spec.lm_head)
        n_heads = cfg.num_attention_heads
        d_model = cfg.hidden_size
        d_head = getattr(cfg, "head_dim", None) or d_model // n_heads
        context = (
            getattr(cfg, "max_position_embeddings", None)
            or getattr(cfg, "n_positions", None)
            or 2048
        )
        down = self.spec.get(self._blocks[0], self.spec.mlp_down)
        d_mlp = down.weight.shape[0 if self.spec.out_proj_is_conv1d else 1]
        parallel = bool(self.spec.parallel_attr and getattr(cfg, self.spec.parallel_attr, False))
        self.info = ModelInfo(
            name=name,
            family=cfg.model_type,
            n_blocks=len(self._blocks),
            n_heads=n_heads,
            d_model=d_model,
            d_head=d_head,
            d_mlp=int(d_mlp),
            vocab_size=self._lm_head.weight.shape[0],
            context_length=int(context),
            n_params=sum(p.numel() for p in hf_model.parameters()),
            source=source,
            parallel_residual=parallel,
        )
        self._softcap = getattr(cfg, self.spec.softcap_attr) if self.spec.softcap_attr else None
        self._attn_impl = getattr(cfg, "_attn_implementation", None)
        # an attention softcap is only implemented by the eager kernel (Gemma-2; Gemma 3 if set)
        if self.spec.needs_eager_attention or getattr(cfg, "attn_logit_softcapping", None):
            self._set_attention("eager")
        # Attention probabilities need the eager kernel; every other pass uses the model's own
        # (usually SDPA), so a trace's numbers never depend on what ran before it.
        self._default_attn = self._attn_impl or "eager"
        # transformers 5.2x renamed ``past_key_values`` to ``cache`` (the old name warns)
        params = inspect.signature(hf_model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def from_pretrained_model(
        cls, hf_model: nn.Module, tokenizer: Any, *, name: str, source: str = ""
    ) -> HFLensModel:
        """Wrap an already-built HF model and its ``transformers`` tokenizer."""
        gen = getattr(hf_model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        extra = eos if isinstance(eos, list) else [eos] if eos is not None else []
        return cls(hf_model, HFTokenizer(tokenizer, extra), name=name, source=source)

    # hook points -------------------------------------------------------------------------------
    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self._blocks

    def head_out_proj(self, layer: int) -> nn.Module:
        return self.spec.get(self._blocks[layer], self.spec.out_proj)

    def hook_sites(self, block: int) -> dict[str, HookSite]:
        b, spec = self._blocks[block], self.spec
        return {
            "resid_pre": HookSite(b, "input", kwarg="hidden_states"),
            "head_out": HookSite(spec.get(b, spec.out_proj), "input"),
            "attn_out": HookSite(spec.get(b, spec.attn_out), "output"),
            "mlp_post": HookSite(spec.get(b, spec.mlp_down), "input"),
            "mlp_out": HookSite(spec.get(b, spec.mlp_out), "output"),
            "resid_post": HookSite(b, "output"),
        }

    def head_out_weight(self, layer: int) -> torch.Tensor:
        w = self.head_out_proj(layer).weight
        return w.T if self.spec.out_proj_is_conv1d else w

    def mlp_out_weight(self, block: int) -> torch.Tensor:
        w = self.spec.get(self._blocks[block], self.spec.mlp_down).weight
        return w.T if self.spec.out_proj_is_conv1d else w

    def embedding_module(self) -> nn.Module:
        return self.hf.get_input_embeddings()

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self._norm(h)

    @property
    def unembed_weight(self) -> torch.Tensor:
        return self._lm_head.weight

    @property
    def unembed_bias(self) -> torch.Tensor | None:
        return getattr(self._lm_head, "bias", None)

    @property
    def logit_softcap(self) -> float | None:
        return self._softcap

    # running -----------------------------------------------------------------------------------
    def _set_attention(self, impl: str) -> None:
        if self._attn_impl == impl:
            return
        setter = getattr(self.hf, "set_attn_implementation", None)
        if setter is not None:
            setter(impl)
        else:  # older transformers
            self.hf.config._attn_implementation = impl
        self._attn_impl = impl

    def forward(
        self,
        ids: torch.Tensor,
        *,
        past: Any = None,
        output_attentions: bool = False,
        last_logits_only: bool = False,
        grad: bool = False,
    ) -> ForwardOutput:
        self._set_attention("eager" if output_attentions else self._default_attn)
        if past is None:
            from transformers import DynamicCache

            past = DynamicCache()
        try:
            with contextlib.nullcontext() if grad else torch.inference_mode():
                out = self.hf(
                    input_ids=ids.to(self.device),
                    **{self._cache_kw: past},
                    use_cache=True,
                    output_attentions=output_attentions,
                    logits_to_keep=1 if last_logits_only else 0,
                    return_dict=True,
                )
        except StopForward as stop:
            stop.past = past  # DynamicCache is filled in place, block by block
            raise
        attn = list(out.attentions) if output_attentions and out.attentions else None
        return ForwardOutput(logits=out.logits, attentions=attn, past=out[self._cache_kw])

    def select_cache_rows(self, past: Any, rows: torch.Tensor) -> Any:
        past.reorder_cache(rows.to(self.device))
        return past


def load_hf_directory(
    path: str | Path, *, device: str | torch.device | None = None, name: str | None = None
) -> HFLensModel:
    """Load a local Hugging Face causal LM directory (config.json + weights + tokenizer)."""
    path = Path(path).expanduser()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
    try:
        model_type = json.loads(config_file.read_text())["model_type"]
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"{config_file} is not a valid model config: {exc}") from None
    spec = family_spec(model_type)
    dev = default_device(device)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # transformers raises many types here
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {exc}") from None
    kwargs: dict[str, Any] = {"dtype": dtype_for(dev)}
    if spec.needs_eager_attention:
        kwargs["attn_implementation"] = "eager"
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading a local directory takes a second: no bar
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load the weights in {path} (corrupt or truncated file?): {exc}"
        ) from None
    finally:
        hf_logging.enable_progress_bar()
    hf_model.to(dev)
    return HFLensModel.from_pretrained_model(
        hf_model, tok, name=name or path.name, source=str(path)
    )
