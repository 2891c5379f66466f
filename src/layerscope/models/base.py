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
from typing import Any, Literal

import torch
from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    """Static facts about a loaded model."""

    name: str
    family: str
    n_blocks: int  # transformer blocks L; the lens reads L + 1 layers, h_0 .. h_L
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int  # MLP hidden width (neurons per block)
    vocab_size: int
    context_length: int
    n_params: int
    source: str = ""  # where the weights came from (path or catalog name)
    parallel_residual: bool = False  # attention and MLP both read resid_pre (GPT-NeoX, GPT-J)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_lens_layers(self) -> int:
        """Lens layers h_0 .. h_L: blocks + 1."""
        return self.n_blocks + 1


#: The hook points of every block, in the order a forward pass reaches them. Each adapter maps
#: them to its own modules (:meth:`LensModel.hook_sites`); the names are the same for every family.
HOOK_POINTS: dict[str, str] = {
    "resid_pre": "residual stream entering the block [B, T, d] (for block 0 this is h_0)",
    "head_out": "each head's output before the output projection W_O [B, T, H, d_head]",
    "attn_out": "attention's contribution to the residual stream [B, T, d]",
    "resid_mid": (
        "resid_pre + attn_out [B, T, d]: after attention, before the MLP. In parallel-residual "
        "families (GPT-NeoX) the MLP reads resid_pre, so no module reads this sum; editing it "
        "edits attn_out by the difference"
    ),
    "mlp_post": "the MLP's neuron activations, the input of its down projection [B, T, d_mlp]",
    "mlp_out": "the MLP's contribution to the residual stream [B, T, d]",
    "resid_post": "residual stream leaving the block [B, T, d] (block l's is h_{l+1})",
}
#: points the adapters attach torch hooks to; ``resid_mid`` is derived from two of them
MODULE_POINTS = ("resid_pre", "head_out", "attn_out", "mlp_post", "mlp_out", "resid_post")


@dataclass(frozen=True)
class HookSite:
    """Where one hook point of one block lives: a module, and whether the value is its input
    (first positional argument, or the keyword ``kwarg``) or its output (a tensor, or a tuple
    whose first item is the tensor)."""

    module: nn.Module
    io: Literal["input", "output"]
    kwarg: str | None = None


class StopForward(Exception):
    """Raised by a hook to end a forward pass early (early exit: later blocks never run).

    ``value`` is whatever the hook wants to hand back; the adapter sets ``past`` to the KV cache
    as far as the pass got (the blocks before the stop), so generation can continue from it.
    """

    def __init__(self, value: Any) -> None:
        super().__init__("forward pass stopped by a hook")
        self.value = value
        self.past: Any = None


class Tokenizer(ABC):
    """Text <-> token ids, including the family's chat format."""

    #: id prepended to plain text, if the family does that (None otherwise)
    bos_id: int | None = None
    #: the family's padding token (its pad, else its EOS/document token): a neutral filler, e.g.
    #: the baseline of integrated gradients (None if the family has none)
    pad_id: int | None = None

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

    :meth:`hook_sites` maps the :data:`HOOK_POINTS` of a block to modules the engine attaches
    torch hooks to. The input of ``blocks[0]`` is ``h_0``; ``head_out`` arrives as the input of
    the attention output projection, [B, T, H * d_head] (head-major).
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
    def hook_sites(self, block: int) -> dict[str, HookSite]:
        """The modules behind every name in :data:`MODULE_POINTS` for ``block``."""

    @abstractmethod
    def head_out_weight(self, layer: int) -> torch.Tensor:
        """W_O of ``layer`` as [d_model, H * d_head], so that ``out = W_O @ concat(heads)``."""

    @abstractmethod
    def mlp_out_weight(self, block: int) -> torch.Tensor:
        """The MLP down projection W_out of ``block`` as [d_model, d_mlp], so that
        ``mlp_out = W_out @ mlp_post`` (+ the projection's bias, if any)."""

    def embedding_module(self) -> nn.Module:
        """The token embedding module (ids -> vectors [B, T, d]): attribution hooks its output."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its token embedding")

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
        grad: bool = False,
    ) -> ForwardOutput:
        """Run ids [B, T_new] (continuing ``past`` if given): logits, attentions, cache.

        With ``last_logits_only`` the logits are those of the last position only ([B, 1, V]):
        the capture needs nothing else, and the lens unembeds every layer itself. With ``grad``
        the pass runs under the caller's autograd mode (gradients can flow, e.g. from a hook's
        tensor to the logits); otherwise it runs without autograd. A hook that raises
        :class:`StopForward` ends the pass: the adapter sets the exception's ``past`` and
        re-raises it.
        """

    @abstractmethod
    def select_cache_rows(self, past: Any, rows: torch.Tensor) -> Any:
        """The cache whose batch row i is row ``rows[i]`` of ``past`` (rows may repeat or be
        dropped: beam search). ``past`` must not be used afterwards."""

    def __repr__(self) -> str:
        i = self.info
        return (
            f"<{type(self).__name__} {i.name} family={i.family} blocks={i.n_blocks} "
            f"heads={i.n_heads} d={i.d_model} vocab={i.vocab_size} device={self.device}>"
        )
