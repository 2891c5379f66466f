"""Structured request logs: one line per request with its id, never a prompt or token text.

The ``layerscope.server`` logger (and its children) writes either plain text or, with
:func:`configure` ``(json=True)`` (``layerscope serve --log-json``), one JSON object per line::

    {"ts": "2026-12-02T12:40:01.123Z", "level": "INFO", "logger": "layerscope.server",
     "event": "request", "message": "request c3.7 heads ok 0.0123s", "request_id": "c3.7",
     "session": "Vx3...", "type": "heads", "outcome": "ok", "seconds": 0.012301}

``event`` names what happened (``request`` for :func:`log_request`; otherwise the message itself),
``request_id`` is ``<connection>.<req>`` (also quoted in internal error frames), ``session`` the
session id only, and ``exc`` the traceback of a logged exception. Nothing here ever records a
prompt, generated text or a token's text: request lines carry ids, types, outcomes and times.
"""

from __future__ import annotations

import json as _json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

log = logging.getLogger("layerscope.server")

#: record attributes (``extra=``) copied into a JSON line when present
FIELDS = ("request_id", "session", "type", "outcome", "seconds")
MAX_EXC_CHARS = 8000
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or message,
            "message": message,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)[-MAX_EXC_CHARS:]
        elif record.exc_text:
            out["exc"] = record.exc_text[-MAX_EXC_CHARS:]
        return _json.dumps(out, ensure_ascii=False, default=str)


def configure(json: bool = False, level: int | str = logging.INFO, stream: IO[str] | None = None):
    """Send the ``layerscope.server`` logs to ``stream`` (stderr): JSON lines or plain text.

    Calling it again replaces the handler it installed before. Returns that handler.
    """
    logger = logging.getLogger("layerscope.server")
    for h in [h for h in logger.handlers if getattr(h, "_layerscope", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    handler._layerscope = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # one line per record, whatever the root logger does
    return handler


def log_request(request_id: str, session: str, type_: str, outcome: str, seconds: float) -> None:
    """Log one finished request (``request_id``: connection.req, as in internal error messages)."""
    log.info(
        "request %s %s %s %.4fs",
        request_id,
        type_,
        outcome,
        seconds,
        extra={
            "event": "request",
            "request_id": request_id,
            "session": session,
            "type": type_,
            "outcome": outcome,
            "seconds": round(seconds, 6),
        },
    )
