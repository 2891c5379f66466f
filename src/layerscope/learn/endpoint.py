"""Any OpenAI-compatible chat endpoint, streamed, with the standard library only.

Configured by a base URL and a model name (``layerscope serve --chat-endpoint URL --chat-model
NAME``, or the environment: ``LAYERSCOPE_CHAT_URL``, ``LAYERSCOPE_CHAT_MODEL``); an API key, if
the endpoint needs one, comes only from ``LAYERSCOPE_CHAT_API_KEY`` and travels only in the
request's ``Authorization`` header (it is kept out of reprs and error messages, and never sent to
the web page). The request is ``POST {base}/chat/completions`` with ``stream: true``; the answer
is read as server-sent events (``data: {...}`` lines, ``data: [DONE]`` at the end). An endpoint
that ignores ``stream`` and answers one JSON object works too.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from layerscope.learn.generate import GenerationError

ENV_URL = "LAYERSCOPE_CHAT_URL"
ENV_MODEL = "LAYERSCOPE_CHAT_MODEL"
ENV_KEY = "LAYERSCOPE_CHAT_API_KEY"


@dataclass(frozen=True)
class EndpointConfig:
    """Where the chat endpoint is, which model it should run, and the key (never shown)."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, url: str | None = None, model: str | None = None) -> EndpointConfig | None:
        """The configured endpoint (arguments first, then the environment), or None."""
        url = url or os.environ.get(ENV_URL) or None
        if not url:
            return None
        model = model or os.environ.get(ENV_MODEL) or "default"
        return cls(url=url, model=model, api_key=os.environ.get(ENV_KEY) or None)


class EndpointGenerator:
    """Streams a chat reply from an OpenAI-compatible ``/chat/completions``."""

    mode = "endpoint"

    def __init__(
        self,
        config: EndpointConfig,
        *,
        max_tokens: int = 400,
        temperature: float = 0.2,
        timeout: float = 60.0,
    ) -> None:
        self.config = config
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout

    def _hide(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def stream(self, messages: Sequence[dict[str, str]]) -> Iterator[str]:
        """Text pieces of the reply as they arrive (GenerationError on any failure)."""
        parts = urlsplit(self.config.url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GenerationError("the chat endpoint URL must start with http:// or https://")
        https = parts.scheme == "https"
        conn_cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=self.timeout)
        body = {
            "model": self.config.model,
            "messages": list(messages),
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        try:
            conn.request("POST", f"{parts.path}/chat/completions", json.dumps(body), headers)
            resp = conn.getresponse()
            if resp.status != 200:
                detail = resp.read(300).decode("utf-8", "replace").strip()
                raise GenerationError(
                    self._hide(f"the chat endpoint answered HTTP {resp.status}: {detail}")
                )
            if "text/event-stream" in (resp.getheader("Content-Type") or ""):
                yield from self._events(resp)
            else:
                yield _message_text(json.loads(resp.read()))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise GenerationError(self._hide(f"the chat endpoint failed: {exc}")) from None
        finally:
            conn.close()

    def _events(self, resp: http.client.HTTPResponse) -> Iterator[str]:
        while True:
            raw = resp.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                raise GenerationError(self._hide(f"the chat endpoint reported: {event['error']}"))
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text


def _message_text(reply: dict) -> str:
    try:
        return reply["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise GenerationError("the chat endpoint's answer has no message content") from None
