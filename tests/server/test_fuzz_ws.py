"""Property-based tests of the WebSocket protocol: whatever a client sends, every answer is a
valid server frame, no request ends in an ``internal`` error, and none goes unanswered.

Three kinds of messages go over one WebSocket to a real server on loopback (tiny model):
requests drawn from each request type's JSON Schema (as ``/api/protocol`` publishes it), those
requests with one part mutated into arbitrary JSON, and arbitrary JSON or text. Every read has a
time limit (:mod:`server.live_wire`), so a hang fails the test. The runs are derandomized (the
same examples every time, no example database) and bounded to well under a minute.

``hypothesis-jsonschema`` is not installed (schemathesis 4 no longer uses it), so
:func:`from_schema` below turns the subset of JSON Schema that pydantic writes into strategies.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.server.handlers import REGISTRY
from server.live_wire import Wire, live_server

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
#: more examples for a deeper run than CI's (e.g. LAYERSCOPE_FUZZ_SCALE=10: minutes)
SCALE = max(1, int(os.environ.get("LAYERSCOPE_FUZZ_SCALE", "1")))
#: examples per request type drawn from its schema, then mutated ones, then arbitrary JSON
PER_TYPE, MUTATED, ARBITRARY = 10 * SCALE, 200 * SCALE, 100 * SCALE
#: how long one answer may take on the tiny model (a hang fails)
TIMEOUT = 30.0
#: the codes a request may end with here: never ``internal`` (nor ``busy``: one at a time)
ALLOWED = {"bad_request", "not_found"}

#: bounds tightened for the fuzz only, so that valid requests stay cheap on the tiny model (the
#: real bounds are exercised by tests/server/test_bad_input.py); (type, field) -> schema update
CHEAP: dict[tuple[str, str], dict[str, Any]] = {
    ("trace", "generate"): {"maximum": 4},
    ("early_exit", "generate"): {"maximum": 4},
    ("branch", "generate"): {"maximum": 4},
    ("steer_sweep", "generate"): {"maximum": 3},
    ("steer_sweep", "strengths"): {"maxItems": 3},
    ("attribute", "steps"): {"maximum": 6},
    ("beams", "width"): {"maximum": 3},
    ("beams", "length"): {"maximum": 4},
    ("induction_probe", "n_tokens"): {"maximum": 24},
    ("component_patch", "clean"): {"maxLength": 12},
    ("component_patch", "corrupted"): {"maxLength": 12},
    ("patch_sweep", "clean"): {"maxLength": 16},
    ("patch_sweep", "corrupted"): {"maxLength": 16},
}
MAX_TEXT = 40  # characters of a drawn string (longer ones: test_bad_input.py)
MAX_ITEMS = 6


# ---------------------------------------------------------------- JSON Schema -> strategy


def from_schema(schema: dict, defs: dict) -> st.SearchStrategy:
    """Values valid for ``schema``, a JSON Schema as pydantic writes it (``$ref`` into ``defs``,
    ``anyOf``/``oneOf``, ``const``/``enum``, numeric and length bounds, ``pattern``, objects with
    ``properties``/``required``/``additionalProperties``), with text and list sizes capped so the
    fuzz stays cheap. (hypothesis-jsonschema 0.23, the library for this, fails under this
    hypothesis: ``AttributeError: 'many' object has no attribute 'more'``.)"""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], defs)
    t = schema.get("type")
    if isinstance(t, list):
        return st.one_of([from_schema({**schema, "type": x}, defs) for x in t])
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -(2**70) - 1) + 1)
        hi = schema.get("maximum", schema.get("exclusiveMaximum", 2**70 + 1) - 1)
        return st.integers(lo, hi)
    if t == "number":
        return st.floats(
            schema.get("minimum", schema.get("exclusiveMinimum")),
            schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    if t == "string":
        lo = schema.get("minLength", 0)
        hi = max(lo, min(schema.get("maxLength", MAX_TEXT), MAX_TEXT))
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: lo <= len(s) <= schema.get("maxLength", 10**9)
            )
        return st.text(min_size=lo, max_size=hi)
    if t == "array":
        items = from_schema(schema.get("items", {}), defs)
        lo = schema.get("minItems", 0)
        return st.lists(
            items, min_size=lo, max_size=max(lo, min(schema.get("maxItems", 8), MAX_ITEMS))
        )
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            return st.dictionaries(st.text(max_size=8), from_schema(extra, defs), max_size=4)
        return fixed
    return json_values()  # {} or true: anything


def json_values(max_leaves: int = 12) -> st.SearchStrategy:
    """Arbitrary JSON, including what Python's reader also takes (NaN, infinities, huge ints)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from([2**63, -(2**63) - 1, 10**30, 2**53 + 1])
        | st.floats()  # NaN and infinities included
        | st.text(max_size=MAX_TEXT)
        | st.sampled_from(["\ud800", "\x00", "\u202e", "t_", "@trace_id"])
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def request_strategy(rt: Any) -> st.SearchStrategy:
    """Messages of request type ``rt`` drawn from its JSON Schema (with :data:`CHEAP` bounds)."""
    schema = json.loads(json.dumps(rt.schema.model_json_schema()))
    for (type_, field), update in CHEAP.items():
        if type_ == rt.type:
            prop = schema["properties"][field]
            target = next((a for a in prop.get("anyOf", []) if a.get("type") != "null"), prop)
            target.update(update)
            # always drawn: left out, it would take its (costlier) default
            schema["required"] = sorted({*schema.get("required", []), field})
    return from_schema(schema, schema.get("$defs", {}))


def with_stored_ids(msg: st.SearchStrategy) -> st.SearchStrategy:
    """Half the time, id fields name results the server holds (placeholders filled in later)."""

    def fill(pair: tuple[dict, bool]) -> dict:
        m, use = pair
        if use:
            m = {**m}
            if "trace_id" in m:
                m["trace_id"] = "@trace_id"
            if "vector_id" in m:
                m["vector_id"] = "@vector_id"
        return m

    return st.tuples(msg, st.booleans()).map(fill)


def mutated(msg: st.SearchStrategy) -> st.SearchStrategy:
    """A valid request with one part changed: a field set to arbitrary JSON, dropped, or added."""

    @st.composite
    def mutate(draw: Any) -> dict:
        m = dict(draw(msg))
        keys = sorted(m)
        how = draw(st.sampled_from(["set", "drop", "add"]))
        if how == "add" or not keys:
            m[draw(st.text(min_size=1, max_size=8))] = draw(json_values(4))
        elif how == "drop":
            m.pop(draw(st.sampled_from(keys)))
        else:
            m[draw(st.sampled_from(keys))] = draw(json_values(6))
        return m

    return mutate()


ANY_REQUEST = st.one_of([request_strategy(rt) for rt in REGISTRY])


# ---------------------------------------------------------------- the wire


@pytest.fixture(scope="module")
def wire(tiny):
    from layerscope.server import create_app
    from layerscope.server.limits import Limits

    # one client sends everything, as fast as answers come: no rate limit gets in the way here
    app = create_app(tiny, limits=Limits(client_rate=10_000.0, client_burst=10_000))
    with live_server(app) as url, Wire(url, "fuzz-ws-tests") as w:
        ids = {"@trace_id": w.trace_works(1)}
        vec = w.ask({"type": "steering_vector", "req": 2, "positive": ["a"], "negative": ["b"]}, 2)
        ids["@vector_id"] = vec["vector_id"]
        yield w, ids


class Exchange:
    """Sends one message at a time and checks what ends it."""

    def __init__(self, w: Wire, ids: dict[str, str]) -> None:
        self.w, self.ids, self.req = w, ids, 100

    def send(self, message: Any, *, raw: str | None = None) -> dict:
        """Send ``message`` (with a fresh ``req`` if it is an object) or the text ``raw``; the
        frame that ends it."""
        if raw is None:
            if isinstance(message, dict):
                self.req += 1
                message = {**message, "req": message.get("req", self.req)}
                for k in ("trace_id", "vector_id"):
                    if isinstance(message.get(k), str):
                        message[k] = self.ids.get(message[k], message[k])
            raw = json.dumps(message)
        self.w.send(raw)
        while True:  # one request in flight: the next terminal frame is its end
            f = self.w.frame(TIMEOUT)  # validated against REGISTRY.server_frame
            if f["type"] in self.w.terminal:
                break
        if f["type"] == "error":
            assert f["code"] in ALLOWED, f"{raw[:300]} -> {f}"
            assert f["message"], f
        return f


@pytest.fixture(scope="module")
def exchange(wire):
    return Exchange(*wire)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("type_", sorted(rt.type for rt in REGISTRY))
def test_requests_drawn_from_each_schema(exchange, type_):
    rt = REGISTRY[type_]

    @settings(FUZZ, max_examples=PER_TYPE)
    @given(with_stored_ids(request_strategy(rt)))
    def run(msg):
        end = exchange.send({"type": type_, **msg})
        assert end["type"] == "error" or end["type"] in rt.info().terminal, end

    run()


@settings(FUZZ, max_examples=MUTATED)
@given(mutated(with_stored_ids(ANY_REQUEST)))
def test_mutated_requests(exchange, msg):
    exchange.send(msg)


@settings(FUZZ, max_examples=ARBITRARY)
@given(
    json_values()
    | st.dictionaries(st.sampled_from(["type", "req", "prompt", "trace_id"]), json_values(3))
)
def test_arbitrary_json(exchange, value):
    try:
        raw = json.dumps(value)
    except ValueError:
        raw = repr(value)
    exchange.send(None, raw=raw)


@settings(FUZZ, max_examples=ARBITRARY // 2)
@given(st.text(max_size=200))
def test_arbitrary_text(exchange, text):
    exchange.send(None, raw=text)


def test_after_the_fuzz_the_connection_and_server_still_work(wire):
    w, _ = wire
    w.trace_works()
