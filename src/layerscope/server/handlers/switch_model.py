"""``switch_model``: load another model and serve it instead of the current one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from layerscope.server.context import RequestContext
from layerscope.server.frames import model_summary
from layerscope.server.registry import request
from layerscope.server.schemas import Frame, ModelSummary, Request


class SwitchModelRequest(Request):
    """Load model `name` (one of `/api/models`) and serve it from now on; requests sent before
    this one finish on the old model, stored traces of the old model are dropped"""

    type: Literal["switch_model"] = "switch_model"
    name: str = Field(min_length=1, max_length=200)


class ModelFrame(Frame):
    """The server now serves `model` (`req` null: another client switched it); traces of
    `previous` are gone and token texts are sent again"""

    type: Literal["model"] = "model"
    req: int | None = None
    model: ModelSummary
    previous: str
    dropped: int  # stored results of the previous model that were dropped
    load_seconds: float


@request(SwitchModelRequest, answers=ModelFrame)
def switch_model(ctx: RequestContext, msg: SwitchModelRequest) -> ModelFrame:
    done = ctx.server.switch_model(msg.name)  # runs on the worker: other jobs wait behind it
    frame = ModelFrame(
        model=model_summary(done.model),
        previous=done.previous,
        dropped=done.dropped,
        load_seconds=round(done.seconds, 3),
    )
    if done.model.info.name != done.previous:
        ctx.server.broadcast(frame, exclude=ctx.listener)
    return frame.model_copy(update={"req": msg.req})
