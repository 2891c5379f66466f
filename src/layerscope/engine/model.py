"""``Model``: a loaded model with the engine's verbs (what ``layerscope.load`` returns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerscope.engine.analyses.patching import PatchSweep, patch_sweep
from layerscope.engine.decoding.early_exit import early_exit_generate
from layerscope.engine.trace import Trace, prompt_ids, run_trace
from layerscope.models.base import LensModel


class Model:
    """A :class:`~layerscope.models.base.LensModel` plus tracing, patching and early exit.

    Attributes of the wrapped model (``info``, ``tokenizer``, ``device``, hook sites...) read
    through; ``lens_model`` is the wrapped model itself.
    """

    def __init__(self, lens_model: LensModel) -> None:
        self.lens_model = lens_model

    def __getattr__(self, name: str) -> Any:
        if name == "lens_model":  # not set yet (unpickling, copy): never recurse
            raise AttributeError(name)
        return getattr(self.lens_model, name)

    def trace(self, prompt: str | None = None, **kwargs: Any) -> Trace:
        """Capture ``prompt`` and read every layer (:func:`layerscope.engine.trace.run_trace`)."""
        return run_trace(self.lens_model, prompt, **kwargs)

    def patch_sweep(
        self, clean: str | Sequence[int], corrupted: str | Sequence[int], **kwargs: Any
    ) -> PatchSweep:
        """Activation patching of every (layer, position) (prompts as text or token ids)."""
        return patch_sweep(self.lens_model, self._ids(clean), self._ids(corrupted), **kwargs)

    def early_exit(self, prompt: str | Sequence[int], layer: int, n: int = 16) -> list[int]:
        """Greedy token ids read from the lens at ``layer`` (:mod:`~layerscope.engine.decoding.
        early_exit`)."""
        return early_exit_generate(self.lens_model, self._ids(prompt), layer, n)

    def _ids(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return prompt_ids(self.lens_model, prompt, None, False)
        return prompt_ids(self.lens_model, None, prompt, False)

    def __repr__(self) -> str:
        return repr(self.lens_model)


def lens_model_of(model: Model | LensModel) -> LensModel:
    """The LensModel behind either."""
    return model.lens_model if isinstance(model, Model) else model
