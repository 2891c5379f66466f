"""Model adapters: one interface (``LensModel``) for every family."""

from layerscope.models.base import ForwardOutput, LensModel, ModelInfo, Tokenizer

__all__ = ["ForwardOutput", "LensModel", "ModelInfo", "Tokenizer"]
