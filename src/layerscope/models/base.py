"""The one interface every model family implements.

The engine never asks *which* family it is talking to: it reads hook points (modules it can attach
torch hooks to), the final norm and the unembedding through this interface. Every per-family quirk
(HF's already-normed ``hidden_states[-1]``, Gemma-2's softcaps, nanochat's normed embedding) stays
inside the adapter that implements it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a loaded model."""

    name: str
    family: str
    n_layers: int  # transformer blocks L; the lens has L + 1 layers
    n_heads: int
    d_model: int
    d_head: int
    vocab_size: int
    context_length: int
    n_params: int
    source: str = ""  # where the weights came from (path or catalog name)
    extra: dict[str, Any] = field(default_factory=dict)


class Tokenizer(ABC):
    """Text <-> token ids, including the family's chat format."""

    #: id prepended to plain text, if the family does that (None otherwise)
    bos_id: int | None = None

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids for plain text, exactly as the model's own pipeline makes them (BOS if any)."""

    @abstractmethod
    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Ids for a conversation, ending where the assistant's reply begins."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of a sequence of ids."""

    @abstractmethod
    def token_text(self, token_id: int) -> str:
        """Readable text of one token (partial UTF-8 shown with escapes, never dropped)."""

    @property
    @abstractmethod
    def stop_ids(self) -> frozenset[int]:
        """Ids that end a generated chat reply."""


@dataclass
class ForwardOutput:
    """What one adapter forward step returns."""

    logits: torch.Tensor  # [B, T_new or 1, V], softcap applied: identical to the model's logits
    attentions: list[torch.Tensor] | None  # per layer [B, H, T_new, T_total] probabilities
    past: Any  # opaque KV cache to pass to the next step


class LensModel(ABC):
    """A causal LM seen through the hook points the engine needs.

    Hook points (torch modules; the engine attaches forward hooks to them):
    - ``blocks[l]``: block l; its *input* (first positional arg or ``hidden_states`` kwarg) is the
      residual stream entering it, its output (tensor, or tuple whose first item is the tensor) the
      stream after it. The input of ``blocks[0]`` is ``h_0``.
    - ``head_out_proj(l)``: the attention output projection of block l; its *input* is the
      concatenation of all heads' outputs, shape [B, T, H * d_head] (head-major).
    - ``mlp(l)``: the MLP of block l; its output is the MLP's contribution to the residual.
    """

    info: ModelInfo
    tokenizer: Tokenizer
    device: torch.device
    dtype: torch.dtype

    @property
    @abstractmethod
    def blocks(self) -> Sequence[nn.Module]:
        """The transformer blocks in order."""

    @abstractmethod
    def head_out_proj(self, layer: int) -> nn.Module:
        """The attention output projection of ``layer`` (its input holds the per-head outputs)."""

    @abstractmethod
    def mlp(self, layer: int) -> nn.Module:
        """The MLP module of ``layer``."""

    @abstractmethod
    def head_out_weight(self, layer: int) -> torch.Tensor:
        """W_O of ``layer`` as [d_model, H * d_head], so that ``out = W_O @ concat(heads)``."""

    @abstractmethod
    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        """The model's own final normalisation applied to residual vectors [..., d_model]."""

    @property
    @abstractmethod
    def unembed_weight(self) -> torch.Tensor:
        """Unembedding matrix [V, d_model] (the lm_head), on the model's device."""

    @property
    def unembed_bias(self) -> torch.Tensor | None:
        """Unembedding bias [V], if the family has one."""
        return None

    @property
    def logit_softcap(self) -> float | None:
        """Final logit softcap c (logits = c * tanh(logits / c)), if the family has one."""
        return None

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for normed residual vectors, softcap included."""
        logits = torch.nn.functional.linear(x, self.unembed_weight, self.unembed_bias)
        cap = self.logit_softcap
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    @abstractmethod
    def forward(
        self,
        ids: torch.Tensor,
        *,
        past: Any = None,
        output_attentions: bool = False,
        last_logits_only: bool = False,
    ) -> ForwardOutput:
        """Run ids [B, T_new] (continuing ``past`` if given): logits, attentions, cache.

        With ``last_logits_only`` the logits are those of the last position only ([B, 1, V]):
        the capture needs nothing else, and the lens unembeds every layer itself.
        """

    def trace(self, prompt: str | None = None, **kwargs: Any) -> Any:
        """Capture ``prompt`` and read every layer (:func:`layerscope.engine.trace.run_trace`)."""
        from layerscope.engine.trace import run_trace

        return run_trace(self, prompt, **kwargs)

    def __repr__(self) -> str:
        i = self.info
        return (
            f"<{type(self).__name__} {i.name} family={i.family} layers={i.n_layers} "
            f"heads={i.n_heads} d={i.d_model} vocab={i.vocab_size} device={self.device}>"
        )
