"""``Model``: a loaded model with the engine's verbs (what ``layerscope.load`` returns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layerscope.engine.analyses.ablation import HeadSweep, head_sweep
from layerscope.engine.analyses.attribution import Attribution, attribute
from layerscope.engine.analyses.comparison import Comparison, compare
from layerscope.engine.analyses.component_patching import ComponentSweep, component_patch_sweep
from layerscope.engine.analyses.effect import Effect, effect
from layerscope.engine.analyses.patching import PatchSweep, patch_sweep
from layerscope.engine.analyses.steering import (
    DEFAULT_STRENGTHS,
    SteeringVector,
    SteerSweep,
    steer_sweep,
    steering_vector,
)
from layerscope.engine.decoding.beams import BeamResult, beam_search
from layerscope.engine.decoding.branching import branch
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

    def attribute(
        self,
        prompt: str | Sequence[int],
        target: str | int | None = None,
        method: str = "integrated_gradients",
        steps: int = 64,
        interventions: Sequence = (),
        **kwargs: Any,
    ) -> Attribution:
        """Which input tokens drive log p(target) at the last position
        (:mod:`~layerscope.engine.analyses.attribution`)."""
        return attribute(
            self.lens_model, self._ids(prompt), target, method, steps, interventions, **kwargs
        )

    def component_patch_sweep(
        self,
        clean: str | Sequence[int],
        corrupted: str | Sequence[int],
        answer_id: int | None = None,
        **kwargs: Any,
    ) -> ComponentSweep:
        """Patch every head, attention output, MLP output and residual cell from ``clean`` into
        ``corrupted`` (:mod:`~layerscope.engine.analyses.component_patching`)."""
        return component_patch_sweep(
            self.lens_model, self._ids(clean), self._ids(corrupted), answer_id, **kwargs
        )

    def compare(
        self,
        prompt_a: str | Sequence[int],
        prompt_b: str | Sequence[int],
        positions: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> Comparison:
        """Two prompts' traces and per-layer residual similarity
        (:mod:`~layerscope.engine.analyses.comparison`)."""
        return compare(
            self.lens_model, self._ids(prompt_a), self._ids(prompt_b), positions, **kwargs
        )

    def beam_search(
        self,
        prompt: str | Sequence[int],
        width: int = 4,
        length: int = 12,
        length_penalty: float = 1.0,
        stop_at_eos: bool = True,
        **kwargs: Any,
    ) -> BeamResult:
        """The ``width`` best continuations and the tree of expansions
        (:mod:`~layerscope.engine.decoding.beams`)."""
        return beam_search(
            self.lens_model,
            self._ids(prompt),
            width,
            length,
            length_penalty,
            stop_at_eos,
            **kwargs,
        )

    def branch(
        self,
        ids: Sequence[int],
        position: int,
        token_id: int,
        generate: int = 20,
        **trace_kwargs: Any,
    ) -> Trace:
        """A trace of ``ids[:position] + [token_id]`` regenerated from there
        (:mod:`~layerscope.engine.decoding.branching`)."""
        return branch(self.lens_model, ids, position, token_id, generate, **trace_kwargs)

    def effect(
        self,
        prompt_or_ids: str | Sequence[int],
        interventions: Sequence,
        target_id: int | None = None,
    ) -> Effect:
        """The target token's probability and log-probability at the last position, clean and
        with ``interventions`` (:mod:`~layerscope.engine.analyses.effect`)."""
        return effect(self.lens_model, self._ids(prompt_or_ids), interventions, target_id)

    def head_sweep(
        self, prompt: str | Sequence[int], target_id: int | None = None, mode: str = "zero"
    ) -> HeadSweep:
        """Ablate each head on its own and rank the heads by the target's Δp
        (:mod:`~layerscope.engine.analyses.ablation`)."""
        return head_sweep(self.lens_model, self._ids(prompt), target_id, mode)  # type: ignore[arg-type]

    def steering_vector(
        self,
        positive: str | Sequence[str],
        negative: str | Sequence[str],
        layer: int | None = None,
    ) -> SteeringVector:
        """A steering vector at lens layer ``layer``: ActAdd for one pair of prompts, CAA for
        several (:mod:`~layerscope.engine.analyses.steering`)."""
        return steering_vector(self.lens_model, positive, negative, layer)

    def steer_sweep(
        self,
        prompt: str | Sequence[int],
        vector: SteeringVector,
        strengths: Sequence[float] = DEFAULT_STRENGTHS,
        generate: int = 20,
        concept: str | None = None,
    ) -> SteerSweep:
        """Greedy generations at each steering strength, with the concept's probability
        (:func:`~layerscope.engine.analyses.steering.steer_sweep`)."""
        return steer_sweep(self.lens_model, self._ids(prompt), vector, strengths, generate, concept)

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
