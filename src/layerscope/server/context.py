"""What every route shares: the model, its worker and the trace store."""

from __future__ import annotations

from dataclasses import dataclass, field

from layerscope.engine.trace import prompt_ids
from layerscope.models.base import LensModel
from layerscope.server.store import TraceStore
from layerscope.server.worker import ModelWorker


@dataclass
class ServerContext:
    model: LensModel
    worker: ModelWorker = field(default_factory=ModelWorker)
    store: TraceStore = field(default_factory=TraceStore)

    def encode(self, prompt: str, chat: bool) -> list[int]:
        """Prompt ids exactly as a trace with these settings will see them (InputError if empty)."""
        return prompt_ids(self.model, prompt, None, chat)
