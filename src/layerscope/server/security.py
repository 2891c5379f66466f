"""What a web page on another site may not do to a local layerscope, and the page's own policy.

layerscope has no accounts and no authentication: anyone who can reach the port can drive the
model. It therefore listens on loopback by default, and every request passes
:class:`GuardMiddleware` (a pure ASGI middleware, so it sees HTTP requests and WebSocket
handshakes alike):

* **Host check (DNS rebinding).** A page on ``evil.example`` can point its own name at
  127.0.0.1 and then talk to the local server *as same-origin*; its requests still carry
  ``Host: evil.example``. Every request whose ``Host`` (port stripped, IPv6 brackets removed) is
  not one of the server's names is refused: HTTP 400, a WebSocket is closed before it is accepted
  (the browser sees the handshake fail with 403). The names are ``localhost``, ``127.0.0.1`` and
  ``::1``, the address the server was bound to (unless it is a wildcard), and the names the
  operator adds (``layerscope serve --allow-host NAME``).
* **Origin check (cross-site WebSocket hijacking, CSRF).** Browsers let any page open a WebSocket
  to any host and send simple cross-site POSTs, but they always say who is asking in ``Origin``.
  The WebSocket handshake and every state-changing request (POST, PUT, PATCH, DELETE) that has
  an ``Origin`` must name one of the server's own origins (``http(s)://NAME:PORT`` for a name
  above and the port the request came to) or an origin the operator allowed
  (``--allow-origin URL``); ``Origin: null`` (sandboxed frames, ``file:`` pages) is refused.
  A request *without* ``Origin`` is allowed: browsers add the header to every cross-origin
  request, WebSocket handshake and POST they send, so its absence means a non-browser client
  (a Python script, curl, a notebook), which could send any headers it liked anyway and is
  stopped by the Host check and by listening on loopback, not by this one.

:class:`SecurityHeaders` adds a Content-Security-Policy to every HTML and JavaScript response,
plus ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` to all. The
explorer's policy (:data:`PAGE_CSP`, ``HOST`` being the request's checked Host)::

    default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline';
    img-src 'self' data: blob:; font-src 'self'; connect-src 'self' ws://HOST wss://HOST;
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'

Each relaxation was found by serving the app with ``script-src 'self'; style-src 'self';
img-src 'self'`` to headless Chromium, opening every view, and reading the violation reports:

=============================  =================================================================
relaxation                     forced by
=============================  =================================================================
``script-src 'unsafe-eval'``   Alpine.js (standard build) compiles every ``x-*`` / ``@event``
                               attribute with ``new Function``: without it the page does not
                               start (``Alpine Expression Error ... 'unsafe-eval'``). Its CSP
                               build (``@alpinejs/csp``) needs no eval but accepts only property
                               names and method calls, so the ~100 expressions of
                               ``index.html`` (``x-show="!offline && models.length > 0"``,
                               ``@change="switchModel($event.target.value)"``, ...) would each
                               become a named method of the ``Alpine.data`` component: a rewrite
                               of the markup and ``app.js``, one more npm package, and no more
                               inline logic in attributes.
``style-src 'unsafe-inline'``  Plotly.js injects a ``<style>`` element at load
                               (``style-src-elem``) and sets ``style`` attributes on what it
                               draws; views write ``style`` attributes in their markup too
                               (e.g. ``dataflow.js``; ``style-src-attr``). Styles cannot run
                               script.
``img-src data:``              Plotly draws heatmaps as a ``data:image/png`` ``<image>``.
``img-src blob:``              Plotly's "Download PNG" renders the figure through an ``<img>`` of
                               a ``blob:`` URL.
``ws://HOST wss://HOST``       not a relaxation: the WebSocket back to this server, named for
                               browsers whose ``'self'`` does not cover ``ws:``.
=============================  =================================================================

bertviz's iframe page (``/bertviz/...``) gets its own policy (:data:`BERTVIZ_CSP`): bertviz writes
its code and the trace's attention as one inline ``<script>`` that changes with every trace, so
:class:`SecurityHeaders` reads that response whole and allows exactly its inline scripts by
SHA-256 hash (``script-src 'self' 'sha256-...'``), no ``'unsafe-inline'`` and no
``'unsafe-eval'`` for scripts; it keeps ``style-src 'unsafe-inline'`` (bertviz's markup has
``style`` attributes). Token texts reach that script as JSON with ``</script`` and ``<!--``
broken by a zero-width space (``server/bertviz.py``), and bertviz draws them with d3's
``.text()``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("layerscope.server.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: the names every server answers to: the loopback interface
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: the explorer page and its scripts; ``{ws}`` becomes this server's WebSocket origins
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self' {ws}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
#: bertviz's iframe page (``/bertviz/...``): ``{scripts}`` becomes the hashes of the page's own
#: inline scripts (they change with every trace), so no other inline script can run
BERTVIZ_CSP = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.I | re.S)
BERTVIZ_PREFIX = "/bertviz/"
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")


def normalize_host(name: str) -> str:
    """A host name as compared here: lower case, no trailing dot, no IPv6 brackets."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


def split_host_header(value: str) -> tuple[str, int | None] | None:
    """``Host`` as (name, port or None); None if it is not a valid host[:port]."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):  # [v6] or [v6]:port
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        if not rest:
            return normalize_host(name), None
        if not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        name, sep, port_text = value.partition(":")
        if ":" in port_text:  # a bare IPv6 address is not a valid Host header
            return None
        if not sep:
            return normalize_host(name), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return normalize_host(name), int(port_text)


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in canonical form (default port dropped); ValueError if ``origin``
    is not an http(s) origin."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) origin: {origin!r} (e.g. https://example.org:8443)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin is scheme://host[:port] only, not {origin!r}")
    host = normalize_host(parts.hostname)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in origin {origin!r}") from exc
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def is_wildcard(bind_host: str) -> bool:
    """Whether binding to ``bind_host`` listens on every interface."""
    return normalize_host(bind_host) in {normalize_host(w) for w in WILDCARDS}


def is_loopback(bind_host: str) -> bool:
    """Whether ``bind_host`` is a loopback address or ``localhost``."""
    name = normalize_host(bind_host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def server_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a server bound to ``bind_host`` answers to: loopback, the bound address (or, on
    a wildcard, this machine's host name) and ``extra`` (``--allow-host``)."""
    names = set(LOOPBACK_NAMES)
    if is_wildcard(bind_host):
        names.add(normalize_host(socket.gethostname()))
    else:
        names.add(normalize_host(bind_host))
    names.update(normalize_host(n) for n in extra if n.strip())
    return frozenset(names)


def exposure_warning(
    bind_host: str, port: int, hosts: Iterable[str], origins: Iterable[str] = ()
) -> str | None:
    """What ``layerscope serve`` prints when it is reachable from other machines (None on
    loopback)."""
    if is_loopback(bind_host):
        return None
    names = ", ".join(sorted(hosts))
    where = "every network interface" if is_wildcard(bind_host) else bind_host
    lines = [
        f"WARNING: layerscope is listening on {where} (port {port}), not only on this machine.",
        "  Anyone who can reach this port can run the model, read every trace held in memory",
        "  and switch the model: there is no authentication. Prefer --host 127.0.0.1 and an SSH",
        "  tunnel (ssh -L 8000:localhost:8000 ...) unless the network is trusted.",
        f"  Requests must name one of these hosts: {names}.",
    ]
    if is_wildcard(bind_host):
        lines += [
            "  On a wildcard address only the loopback names and this machine's host name "
            f"({normalize_host(socket.gethostname())})",
            "  are accepted: add each name or address people type with --allow-host NAME.",
        ]
    else:
        lines.append("  Add other names people use to reach it with --allow-host NAME.")
    allowed = f" (allowed now: {', '.join(sorted(origins))})" if origins else ""
    lines.append(
        f"  Pages of other sites may not use it; allow one with --allow-origin URL{allowed}."
    )
    return "\n".join(lines)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    # the first value of each header (a repeated Host or Origin is refused below)
    out: dict[bytes, bytes] = {}
    for k, v in scope.get("headers", ()):
        out.setdefault(k.lower(), v)
    return out


def _count(scope: Scope, name: bytes) -> int:
    return sum(1 for k, _ in scope.get("headers", ()) if k.lower() == name)


class GuardMiddleware:
    """Refuses requests for foreign hosts, and browser requests from foreign origins (see the
    module docstring). ``hosts``: the server's names; ``origins``: extra allowed origins."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], origins: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = frozenset(normalize_host(h) for h in hosts)
        self.origins = frozenset(normalize_origin(o) for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        log.warning("refused %s %s: %s", scope["type"], scope.get("path", ""), message)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = (message + "\n").encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def check(self, scope: Scope) -> tuple[int, str] | None:
        """(status, why) if the request must be refused, else None."""
        headers = _headers(scope)
        if _count(scope, b"host") != 1:
            return 400, "Bad request: exactly one Host header is required."
        parsed = split_host_header(headers[b"host"].decode("latin-1"))
        if parsed is None:
            return 400, "Bad request: the Host header is not a valid host[:port]."
        name, port = parsed
        if name not in self.hosts:
            return 400, (
                f"Invalid host {name!r}: this layerscope server answers only to "
                f"{', '.join(sorted(self.hosts))} (start it with --allow-host {name} to add it)."
            )
        needs_origin = scope["type"] == "websocket" or scope.get("method", "GET") in STATE_CHANGING
        n_origin = _count(scope, b"origin")
        if not needs_origin or n_origin == 0:
            return None
        if n_origin > 1:
            return 403, "Forbidden: more than one Origin header."
        origin = headers[b"origin"].decode("latin-1")
        if self.origin_allowed(origin, port):
            return None
        return 403, (
            f"Forbidden: origin {origin!r} may not use this layerscope server (its own pages "
            "may; start it with --allow-origin URL to allow another)."
        )

    def origin_allowed(self, origin: str, port: int | None) -> bool:
        """Whether a browser page at ``origin`` may call a server reached on ``port`` (the Host
        header's port; None when it named none)."""
        try:
            canonical = normalize_origin(origin)
        except ValueError:
            return False  # "null", file:, chrome-extension:, garbage
        if canonical in self.origins:
            return True
        parts = urlsplit(canonical)
        assert parts.hostname is not None  # normalize_origin checked it
        if normalize_host(parts.hostname) not in self.hosts:
            return False
        origin_port = parts.port or _DEFAULT_PORTS[parts.scheme]
        return port is None or port == origin_port


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP sources (``'sha256-...'``) for each inline ``<script>`` of ``html``."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def page_policy(host: str | None) -> str:
    """The explorer's policy, reached as ``host`` (the request's Host header, already checked;
    anything but a plain host[:port] is left out, so no header can add a directive)."""
    ws = f"ws://{host} wss://{host}" if host and _PLAIN_HOST.fullmatch(host) else ""
    return PAGE_CSP.format(ws=ws).replace(" ;", ";")


def bertviz_policy(html: bytes) -> str:
    """bertviz's page policy: its own inline scripts (by hash) and this server's files only."""
    return BERTVIZ_CSP.format(scripts="".join(" " + h for h in inline_script_hashes(html)))


class SecurityHeaders:
    """Adds the Content-Security-Policy to HTML and JavaScript responses, and ``nosniff`` and
    ``Referrer-Policy: no-referrer`` to every response. bertviz's pages (``/bertviz/...``) are
    read whole to hash their inline scripts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _headers(scope).get(b"host", b"").decode("latin-1").strip() or None
        bertviz = scope.get("path", "").startswith(BERTVIZ_PREFIX)
        held: Message | None = None  # a bertviz page's start, sent with its hashed body
        chunks: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {k.lower() for k, _ in headers}
                kind = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in present:
                    headers.append((b"referrer-policy", b"no-referrer"))
                message = {**message, "headers": headers}
                if b"content-security-policy" in present or not (
                    b"html" in kind or b"javascript" in kind
                ):
                    await send(message)
                elif bertviz and b"html" in kind:
                    held = message
                else:
                    csp = page_policy(host).encode("latin-1")
                    message["headers"].append((b"content-security-policy", csp))
                    await send(message)
                return
            if held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                csp = bertviz_policy(body).encode("latin-1")
                held["headers"].append((b"content-security-policy", csp))
                await send(held)
                held = None
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)
