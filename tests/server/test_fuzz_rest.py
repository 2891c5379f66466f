"""schemathesis against the REST API's own OpenAPI document: whatever it draws from the document,
the server never answers 5xx, answers only status codes it documents, and its bodies match their
declared schemas. The app runs on loopback (tiny model) and every call has a time limit, so a hang
fails; the examples are derandomized and bounded."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.live_wire import Wire, live_server

#: cases per operation (LAYERSCOPE_FUZZ_SCALE=10 for a deeper run than CI's)
EXAMPLES = 25 * max(1, int(os.environ.get("LAYERSCOPE_FUZZ_SCALE", "1")))
TIMEOUT = 30.0  # seconds one call may take
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tiny):
    from layerscope.server import create_app

    app = create_app(tiny)
    with live_server(app) as url:
        with Wire(url, "fuzz-rest-tests") as w:  # a stored trace for /api/traces and /bertviz
            trace_id = w.trace_works()
        session = requests.Session()
        session.trust_env = False  # loopback only: no proxy from the environment
        yield app, f"http://{url}", session, trace_id
        session.close()


def fuzz(operation: Any, base_url: str, session: requests.Session, trace_id: str | None) -> None:
    """Call ``operation`` with ``EXAMPLES`` drawn cases (on ``trace_id``, if given), checking
    each answer."""

    @FUZZ
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        if trace_id is not None:
            case.path_parameters["trace_id"] = trace_id
        case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=TIMEOUT)

    run()


def test_every_operation_keeps_its_documented_promises(served):
    """Each operation of the app's OpenAPI document, ``EXAMPLES`` drawn cases each.

    (schemathesis' ``from_fixture`` needs a pytest internal that pytest 9 no longer has, so the
    operations are walked here, each with its own Hypothesis run.)"""
    app, base_url, session, trace_id = served
    schema = schemathesis.openapi.from_dict(app.openapi())
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        # an operation on a stored trace runs twice: with drawn ids, then on the stored trace
        # (so that its other parameters meet a real one)
        for stored in (False, True) if "{trace_id}" in operation.path else (False,):
            try:
                fuzz(operation, base_url, session, trace_id if stored else None)
            except Exception as exc:
                raise AssertionError(f"{operation.label} (stored={stored}): {exc}") from exc
    assert {"POST /api/trace", "GET /api/traces/{trace_id}", "GET /api/health"} <= set(labels)


def test_a_stored_trace_and_its_bertviz_page_are_served(served):
    """The fuzz above mostly draws unknown ids; the known one answers as documented too."""
    _, base_url, session, trace_id = served
    r = session.get(f"{base_url}/api/traces/{trace_id}", timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["trace_id"] == trace_id
    r = session.get(f"{base_url}/bertviz/{trace_id}?start=0&end=999", timeout=TIMEOUT)
    assert r.status_code == 400 and "not a range" in r.text
    r = session.get(f"{base_url}/api/traces/t_nosuchtrace", timeout=TIMEOUT)
    assert r.status_code == 404 and "expired" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"prompt": "Hello", "temperature": NaN}', 422),
        ('{"prompt": "Hello", "generate": 1e400}', 422),
        ('{"prompt": "\\ud800"}', 422),
        ('{"prompt": "word ' + "word " * 400 + '"}', 400),
        ('{"ids": [999999]}', 400),
        ('{"prompt": "Hello"', 422),
        ("[" * 5000 + "]" * 5000, 400),  # FastAPI: "There was an error parsing the body"
        ('{"prompt": "Hello", "req": "1"}', 422),
    ],
)
def test_bad_trace_bodies_are_refused_with_4xx(served, body, status):
    _, base_url, session, _ = served
    r = session.post(
        f"{base_url}/api/trace",
        data=body.encode(),
        headers={"content-type": "application/json"},
        timeout=TIMEOUT,
    )
    assert r.status_code == status, r.text[:300]
    assert "detail" in r.json()
