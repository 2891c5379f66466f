"""What a page on another site, a rebound domain or a request may not do to a local server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket

import pytest
from starlette.websockets import WebSocketDisconnect

from layerscope.server.security import (
    BERTVIZ_CSP,
    exposure_warning,
    normalize_origin,
    server_names,
    split_host_header,
)
from server.server_helpers import ask, local_client, traced

TRACE = {"prompt": "Hello world", "generate": 1}


def _hello(c, **headers) -> dict:
    with c.websocket_connect("/ws", headers=headers) as ws:
        return ws.receive_json()


def _refused_ws(c, **headers) -> int:
    with pytest.raises(WebSocketDisconnect) as caught, c.websocket_connect("/ws", headers=headers):
        pass
    return caught.value.code


# ---------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost.:8000", ("localhost", 8000)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::1]", ("::1", None)),
        ("::1", None),  # IPv6 without brackets is not a Host header
        ("localhost:", None),
        ("localhost:99999", None),
        ("localhost:8000:1", None),
        ("[nothex]:1", None),
        ("", None),
    ],
)
def test_host_headers_parse_strictly(header, parsed):
    assert split_host_header(header) == parsed


def test_origins_normalize_and_bad_ones_are_named():
    assert normalize_origin("HTTPS://Nb.Example:443/") == "https://nb.example"
    assert normalize_origin("http://[::1]:8000") == "http://[::1]:8000"
    for bad in ("null", "file:///x.html", "https://a.example/path", "ws://a.example", "x"):
        with pytest.raises(ValueError, match="origin"):
            normalize_origin(bad)


def test_server_names_follow_the_bind_address():
    loopback = {"localhost", "127.0.0.1", "::1"}
    assert server_names("127.0.0.1") == loopback
    assert server_names("192.168.1.20", ["Lab.Example."]) == loopback | {
        "192.168.1.20",
        "lab.example",
    }
    wild = server_names("0.0.0.0")
    assert "0.0.0.0" not in wild and socket.gethostname().lower() in wild
    assert "testserver" not in server_names("::")  # tests must say who they are


def test_a_warning_only_off_loopback_and_it_says_what_is_exposed():
    assert exposure_warning("127.0.0.1", 8000, server_names("127.0.0.1")) is None
    assert exposure_warning("localhost", 8000, server_names("localhost")) is None
    text = exposure_warning("0.0.0.0", 8000, server_names("0.0.0.0"), ["https://a.example"])
    assert text is not None
    for said in ("every network interface", "no authentication", "--allow-host", "host name"):
        assert said in text
    assert "--allow-origin" in text and "https://a.example" in text


# ---------------------------------------------------------------------------- Host (rebinding)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "testserver", "0.0.0.0"])
def test_a_foreign_host_is_refused_over_http(client, host):
    r = client.get("/api/health", headers={"host": host})
    assert r.status_code == 400
    assert "Invalid host" in r.text and "--allow-host" in r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert client.get("/", headers={"host": host}).status_code == 400  # the page too


def test_a_foreign_host_cannot_open_a_websocket(client):
    assert _refused_ws(client, host="attacker.example:8000") == 1008
    assert _hello(client)["type"] == "hello"  # the server keeps serving its own


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8123", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_with_any_port_are_served(client, host):
    assert client.get("/api/health", headers={"host": host}).status_code == 200
    assert _hello(client, host=host)["type"] == "hello"


def test_an_operator_allowed_host_is_served(tiny):
    from layerscope.server import create_app

    app = create_app(tiny, allowed_hosts=server_names("127.0.0.1", ["lab.example"]))
    with local_client(app) as c:
        assert c.get("/api/health", headers={"host": "lab.example:8000"}).status_code == 200
        hello = _hello(c, host="lab.example:8000", origin="http://lab.example:8000")
        assert hello["type"] == "hello"
        assert c.get("/api/health", headers={"host": "other.example"}).status_code == 400


# ---------------------------------------------------------------------------- Origin (CSWSH, CSRF)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example:8000",
        "http://localhost:9999",  # another local app, on another port
        "null",  # sandboxed iframes, file: pages
        "file://",
    ],
)
def test_a_foreign_origin_cannot_open_a_websocket(client, origin):
    assert _refused_ws(client, host="localhost:8000", origin=origin) == 1008


def test_a_foreign_origin_cannot_post_and_nothing_runs(client):
    r = client.post(
        "/api/trace",
        json=TRACE,
        headers={"host": "localhost:8000", "origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "evil.example" in r.text and "--allow-origin" in r.text
    assert client.get("/api/health").json()["results"] == 0  # no trace ran or was stored
    # a cross-site *form* post (no JSON content type) is refused the same way
    form = client.post(
        "/api/trace", content="x", headers={"origin": "null", "content-type": "text/plain"}
    )
    assert form.status_code == 403


def test_two_origin_headers_are_refused(client):
    r = client.post(
        "/api/trace",
        json=TRACE,
        headers=[("origin", "http://localhost"), ("origin", "https://evil.example")],
    )
    assert r.status_code == 403


def test_reads_from_a_foreign_origin_get_no_cors_permission(client):
    """A GET is not state-changing: it is answered, but without CORS headers the foreign page's
    browser never lets it read the answer."""
    r = client.get("/api/health", headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("localhost:8000", "http://127.0.0.1:8000"),  # both are this server's names
        ("[::1]:8000", "http://[::1]:8000"),
        ("localhost", "https://localhost"),  # behind a TLS proxy on the default port
    ],
)
def test_the_servers_own_pages_are_allowed(client, host, origin):
    assert _hello(client, host=host, origin=origin)["type"] == "hello"
    r = client.post("/api/trace", json=TRACE, headers={"host": host, "origin": origin})
    assert r.status_code == 200 and r.json()["trace_id"]


def test_clients_without_origin_are_allowed(client):
    """Scripts, curl and notebooks send no Origin (browsers always do on these requests)."""
    assert client.post("/api/trace", json=TRACE).status_code == 200
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        assert traced(ws)["type"] == "done"


def test_an_operator_allowed_origin_may_use_it(tiny):
    from layerscope.server import create_app

    app = create_app(tiny, allowed_origins=["https://notebook.example:8888/"])
    with local_client(app) as c:
        origin = "https://notebook.example:8888"
        assert _hello(c, origin=origin)["type"] == "hello"
        assert c.post("/api/trace", json=TRACE, headers={"origin": origin}).status_code == 200
        assert _refused_ws(c, origin="https://notebook.example:9999") == 1008


def test_a_real_browser_handshake_from_a_foreign_origin_gets_403(live_url):
    """Over a real socket (uvicorn): the handshake itself fails, before any frame."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://{live_url}/ws", origin="https://evil.example", open_timeout=10)
    assert caught.value.response.status_code == 403
    port = live_url.rsplit(":", 1)[1]
    with connect(f"ws://{live_url}/ws", origin=f"http://localhost:{port}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    with (
        pytest.raises(InvalidStatus),
        connect(
            f"ws://{live_url}/ws",
            additional_headers={"Host": f"rebound.example:{port}"},
            open_timeout=10,
        ),
    ):
        pass


# ---------------------------------------------------------------------------- headers
def test_the_page_and_its_scripts_carry_the_policy(client):
    page = client.get("/", headers={"host": "localhost:8000"})
    csp = page.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
        "connect-src 'self' ws://localhost:8000 wss://localhost:8000",
    ):
        assert directive in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    script = client.get("/static/js/app.js")
    assert script.status_code == 200 and "content-security-policy" in script.headers
    api = client.get("/api/health")
    assert api.headers["x-content-type-options"] == "nosniff"


def _script_src(csp: str) -> list[str]:
    return next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]


def test_the_bertviz_page_allows_exactly_its_own_inline_scripts(client):
    pytest.importorskip("bertviz")
    trace_id = client.post("/api/trace", json=TRACE).json()["trace_id"]
    for view in ("head", "model"):
        r = client.get(f"/bertviz/{trace_id}?view={view}")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        inline = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", r.text, re.S)
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in inline
        ]
        assert inline and _script_src(csp) == ["'self'", *hashes]
        assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
        assert int(r.headers["content-length"]) == len(r.content)  # the body passed whole
    missing = client.get("/bertviz/t_missing")  # an error page: no inline script at all
    assert missing.status_code == 404
    assert _script_src(missing.headers["content-security-policy"]) == ["'self'"]
    assert "unsafe" not in _script_src(BERTVIZ_CSP.format(scripts=""))


def test_bertviz_token_texts_cannot_close_its_script():
    from layerscope.server import bertviz

    assert bertviz._token("<b>B</b>") == "<b>B</b>"  # shown as written
    broken = bertviz._token("</script><script>alert(1)</script><!--")
    assert "</script" not in broken.lower() and "<!--" not in broken
    assert broken.replace("\u200b", "") == "</script><script>alert(1)</script><!--"


# ---------------------------------------------------------------------------- no paths, no network
@pytest.mark.parametrize("name", ["../../etc/passwd", "/tmp/x", "~/models/x", "file:///etc/passwd"])
def test_switch_model_takes_catalog_names_never_paths(tiny, tmp_path, monkeypatch, name):
    """A model directory that really exists is refused too: only catalog names are loaded."""
    from layerscope.models import catalog
    from layerscope.server import create_app
    from tiny import save_tiny

    real_dir = str(save_tiny("llama", tmp_path / "m"))

    def no_load(*a, **k):
        raise AssertionError("a switch_model request made the server load something")

    monkeypatch.setattr(catalog, "load", no_load)
    with local_client(create_app(tiny)) as c, c.websocket_connect("/ws") as ws:
        ws.receive_json()
        for i, asked in enumerate([name, real_dir]):
            f = ask(ws, {"type": "switch_model", "req": 10 + i, "name": asked})
            assert f["type"] == "error" and f["code"] == "bad_request"
            assert "unknown model" in f["message"] and "can switch to" in f["message"]
        assert traced(ws, req=20)["type"] == "done"  # still serving the same model


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/..%2F..%2Fpyproject.toml",
        "/api/docs/%2Fetc%2Fpasswd",
        "/api/traces/..%2F..%2Fetc%2Fpasswd",
        "/bertviz/..%2F..%2Fetc%2Fpasswd",
        "/static/vendor/..%2F..%2F..%2Fpyproject.toml",
        "/static/..%2F..%2F..%2Fpyproject.toml",
    ],
)
def test_no_url_reads_a_file_outside_what_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "[project]" not in r.text and "root:" not in r.text


def _fields(schema: dict, defs: dict) -> set[str]:
    out: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                stack.append(defs.get(node["$ref"].rsplit("/", 1)[-1], {}))
            out.update(node.get("properties", {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def test_no_request_field_names_a_file_or_a_url(client):
    """What a client may send (every WebSocket request, and REST bodies) names no file, directory,
    URL or endpoint: models come from the catalog, the chat endpoint from the operator."""
    schema = client.get("/api/protocol").json()
    openapi = client.get("/openapi.json").json()
    fields = _fields(schema, {**schema.get("$defs", {}), **schema.get("definitions", {})})
    fields |= _fields(openapi.get("paths", {}), openapi.get("components", {}).get("schemas", {}))
    assert fields, "found no request fields at all"
    risky = {f for f in fields if any(w in f.lower() for w in ("path", "file", "url", "dir"))}
    risky |= {f for f in fields if "endpoint" in f.lower() or "download" in f.lower()}
    assert not risky, f"request fields that could name a file or a URL: {sorted(risky)}"


def test_requests_open_no_network_connection(client, monkeypatch):
    """A trace, an ask and a switch to a catalog model that is not on disk open no socket off
    this machine (the switch says how to fetch it instead of fetching)."""
    from layerscope.models import catalog

    monkeypatch.delenv("LAYERSCOPE_CHAT_URL", raising=False)
    opened = []
    real_connect = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else "unix"
        if host not in ("127.0.0.1", "::1", "localhost", "unix"):
            opened.append(address)
            raise OSError("no network in this test")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    missing = next((e.name for e in catalog.CATALOG.values() if e.locate() is None), None)
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        assert traced(ws)["type"] == "done"
        f = ask(
            ws,
            {"type": "ask", "req": 2, "question": "What is a logit lens?", "retrieve_only": True},
        )
        assert f["type"] in ("ask_done", "error")
        if missing is not None:
            f = ask(ws, {"type": "switch_model", "req": 3, "name": missing})
            assert f["type"] == "error" and "run `layerscope fetch" in f["message"]
    assert client.post("/api/trace", json=TRACE).status_code == 200
    assert opened == []


def test_the_policy_names_only_a_plain_host():
    from layerscope.server.security import page_policy

    assert "connect-src 'self' ws://[::1]:8000 wss://[::1]:8000;" in page_policy("[::1]:8000")
    injected = page_policy("a.example;script-src *")
    assert "connect-src 'self';" in injected and "script-src *" not in injected
