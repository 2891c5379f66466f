"""Bad input for every request type: a clear error frame with the right code, never ``internal``;
the connection keeps working and the server stays healthy.

The cases come from two places: each request's JSON Schema (a missing field, a wrong type, numbers
past their bounds, NaN and infinities, empty, huge and unencodable strings, short and long arrays,
an extra field), generated for every type in the registry; and a hand-written table of what the
schema cannot say (an index past the model or the stored trace, unknown or expired ids, prompts too
long for the context, odd but legal text). Everything runs against a real server on loopback with a
time limit on every read, so a request that is never answered fails instead of hanging.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from layerscope.server.handlers import REGISTRY
from server.live_wire import Wire, live_server

SESSION = "bad-input-tests"
TID, VID = "@trace_id", "@vector_id"  # filled in with ids stored on the server
EXPIRED = "@expired"  # a trace id of the model before a switch: dropped
DROP = object()  # a field left out of the message
ANSWERED = "answered"  # a case that must be answered, not refused
ABLATE = {"kind": "ablate", "point": "mlp_out", "block": 0}

#: one request of each type that the server answers (``test_every_base_request_is_answered``);
#: each case below differs from one of these by a single defect
BASE: dict[str, dict[str, Any]] = {
    "ask": {"question": "What does the logit lens show?", "retrieve_only": True},
    "attention_layer": {"trace_id": TID, "block": 0, "position": 0},
    "attention_pattern": {"trace_id": TID, "block": 0, "head": 0},
    "attribute": {"prompt": "Hello world", "steps": 4},
    "beams": {"prompt": "Hello", "width": 2, "length": 2},
    "branch": {"ids": [40, 41, 42], "position": 1, "token_id": 43, "generate": 1},
    "cell": {"trace_id": TID, "layer": 0, "position": 0},
    "compare": {"prompt_a": "Hello world", "prompt_b": "Hello there"},
    "component_patch": {"clean": "Hello world", "corrupted": "Hello there"},
    "early_exit": {"prompt": "Hello", "layer": 1, "generate": 1},
    "effect": {"prompt": "Hello world", "interventions": [ABLATE]},
    "head_stats": {"trace_id": TID},
    "heads": {"trace_id": TID, "position": 0},
    "induction_probe": {"n_tokens": 8},
    "mlp_neurons": {"trace_id": TID, "block": 0, "position": 0},
    "patch_sweep": {"clean": "Hello world", "corrupted": "Hello there"},
    "pca": {"trace_id": TID, "positions": [0, 1]},
    "pipeline": {"trace_id": TID, "position": 0},
    "steer_sweep": {"prompt": "Hello", "vector_id": VID, "strengths": [2.0], "generate": 1},
    "steering_vector": {"positive": ["good"], "negative": ["bad"]},
    "sublayer_lens": {"trace_id": TID},
    "switch_model": {"name": "tiny-llama"},
    "trace": {"prompt": "Hello world"},
    "usage": {"layers_scrubbed": 3, "views": ["heatmap"], "experiments": ["effect"]},
}

# the tiny model (tests/tiny.py): 2 blocks x 4 heads, 3 lens layers, 320 tokens, 128 positions;
# the stored trace TID is "Hello world, how are you" (fewer than 16 tokens)
N_BLOCKS, N_HEADS, N_LAYERS, VOCAB, CONTEXT, FAR = 2, 4, 3, 320, 128, 16
BIG = 10**30


# ---------------------------------------------------------------- cases from the schemas


class Raw(str):
    """A value sent as raw JSON text (``NaN``, ``1e400``: what ``json.dumps`` will not write)."""


def encode(msg: dict) -> str:
    """``msg`` as JSON text, with :class:`Raw` values written verbatim."""
    raws: dict[str, str] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, Raw):
            key = f"@raw{len(raws)}@"
            raws[key] = str(v)
            return key
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(msg))
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text


def _alternatives(prop: dict, defs: dict) -> list[dict]:
    """The non-null schemas a property accepts (``anyOf`` flattened, ``$ref`` resolved)."""
    out = []
    for alt in prop.get("anyOf", prop.get("oneOf", [prop])):
        if "$ref" in alt:
            alt = defs[alt["$ref"].rsplit("/", 1)[-1]]
        if alt.get("type") != "null":
            out.append(alt)
    return out


def _json_types(alts: list[dict]) -> set[str]:
    types = set()
    for a in alts:
        t = a.get("type")
        if t is None:  # const / enum / discriminated union
            types.add("object" if "properties" in a or "oneOf" in a else "string")
        else:
            types.add(t)
    return types


def _field_cases(type_: str, field: str, prop: dict, defs: dict) -> list[tuple[str, Any]]:
    """(case name, bad value) pairs for one field, from its schema."""
    alts = _alternatives(prop, defs)
    types = _json_types(alts)
    cases: list[tuple[str, Any]] = [
        ("wrong-type", "text" if "object" in types else {"wrong": "type"}),
        ("deep-nesting", json.loads("[" * 200 + "]" * 200)),
    ]
    if "string" not in types:
        cases.append(("lone-surrogate", "\ud800"))
    for a in alts:
        t = a.get("type")
        if t in ("integer", "number"):
            cases += [("nan", Raw("NaN")), ("infinity", Raw("-Infinity")), ("1e400", Raw("1e400"))]
            if "minimum" in a:
                cases.append(("below-minimum", a["minimum"] - 1))
            if "maximum" in a:
                cases.append(("above-maximum", a["maximum"] + 1))
            if t == "integer":
                cases += [("fraction", 1.5), ("huge", BIG)]
        elif t == "string" and "enum" not in a and "const" not in a:
            cases.append(("lone-surrogate", "\ud800"))
            if a.get("minLength", 0) >= 1:
                cases.append(("empty", ""))
            if "maxLength" in a and a["maxLength"] < 40_000:
                cases.append(("too-long", "x" * (a["maxLength"] + 1)))
            if "pattern" in a:
                cases.append(("pattern", "<not a name>"))
        elif "enum" in a or "const" in a:
            cases.append(("not-a-choice", "no-such-choice"))
        elif t == "boolean":
            cases.append(("not-a-bool", "maybe"))
        elif t == "array":
            if a.get("minItems", 0) >= 1:
                cases.append(("empty-array", []))
            items = _alternatives(a.get("items", {}), defs)
            item_types = _json_types(items) if items else set()
            if item_types and "object" not in item_types:
                cases.append(("bad-item", [{"wrong": "type"}]))
            base = BASE.get(type_, {}).get(field)
            if "maxItems" in a and isinstance(base, list) and base:
                cases.append(("too-many-items", base[:1] * (a["maxItems"] + 1)))
    return list(dict(cases).items())  # one case per name (the last)


def schema_cases() -> list[Any]:
    """Every schema-derived case of every registered request type."""
    out = []
    for rt in REGISTRY:
        t = rt.type
        schema = rt.schema.model_json_schema()
        defs = schema.get("$defs", {})
        base = BASE.get(t, {})
        out.append(pytest.param(t, {**base, "surprise": 1}, "surprise", id=f"{t}-extra-field"))
        for field in schema.get("required", []):
            if field != "type":
                msg = {k: v for k, v in base.items() if k != field}
                out.append(pytest.param(t, msg, field, id=f"{t}-{field}-missing"))
        for field, prop in schema["properties"].items():
            if field in ("type", "req"):
                continue
            for name, value in _field_cases(t, field, prop, defs):
                msg = {**base, field: value}
                out.append(pytest.param(t, msg, field, id=f"{t}-{field}-{name}"))
    return out


# ---------------------------------------------------------------- what the schemas cannot say

SEMANTIC: list[tuple[str, str, dict, str, str]] = [
    # (id, type, fields over the base, code, words in the message)
    ("trace-too-long-for-context", "trace", {"prompt": "word " * 400}, "bad_request", "context"),
    (
        "trace-generate-past-context",
        "trace",
        {"prompt": DROP, "ids": [40] * 100, "generate": 100},
        "bad_request",
        "context",
    ),
    (
        "trace-ids-outside-vocab",
        "trace",
        {"prompt": DROP, "ids": [VOCAB]},
        "bad_request",
        "out of range",
    ),
    ("trace-negative-id", "trace", {"prompt": DROP, "ids": [-1]}, "bad_request", "ids"),
    ("trace-prompt-and-ids", "trace", {"ids": [1, 2]}, "bad_request", "either"),
    ("trace-whitespace-only", "trace", {"prompt": " "}, None, ""),
    # logits / T overflowed to NaN probabilities (found by test_fuzz_ws.py): greedy in the limit
    (
        "trace-subnormal-temperature",
        "trace",
        {"generate": 2, "temperature": 1e-308},
        ANSWERED,
        "",
    ),
    ("trace-nul-bytes", "trace", {"prompt": "a\u0000b\u0000"}, None, ""),
    ("trace-control-chars", "trace", {"prompt": "\u0001\u0007\u001b[31m\u007f\u0085"}, None, ""),
    ("trace-noncharacters", "trace", {"prompt": "\ufffe\uffff\U0010ffff\u202e"}, None, ""),
    (
        "trace-ablate-block-past-model",
        "trace",
        {"interventions": [{**ABLATE, "block": N_BLOCKS}]},
        "bad_request",
        "block",
    ),
    (
        "trace-ablate-head-past-model",
        "trace",
        {
            "interventions": [
                {"kind": "ablate", "point": "head_out", "block": 0, "heads": [N_HEADS]}
            ]
        },
        "bad_request",
        "head",
    ),
    (
        "trace-patch-position-past-source",
        "trace",
        {
            "interventions": [
                {
                    "kind": "patch",
                    "point": "resid_post",
                    "block": 0,
                    "positions": [FAR],
                    "source_ids": [40],
                }
            ]
        },
        "bad_request",
        "position",
    ),
    (
        "trace-patch-source-outside-vocab",
        "trace",
        {
            "interventions": [
                {"kind": "patch", "point": "resid_post", "block": 0, "source_ids": [VOCAB]}
            ]
        },
        "bad_request",
        "vocabulary",
    ),
    (
        "trace-steer-wrong-size",
        "trace",
        {
            "interventions": [
                {"kind": "steer", "point": "resid_post", "block": 0, "vector": [1.0, 2.0]}
            ]
        },
        "bad_request",
        "numbers",
    ),
    (
        "trace-steer-nan",
        "trace",
        {
            "interventions": [
                {"kind": "steer", "point": "resid_post", "block": 0, "vector": [Raw("NaN")] * 64}
            ]
        },
        "bad_request",
        "finite",
    ),
    (
        "trace-intervention-unknown-kind",
        "trace",
        {"interventions": [{"kind": "melt"}]},
        "bad_request",
        "interventions",
    ),
    ("cell-layer-past-model", "cell", {"layer": N_LAYERS}, "bad_request", "layer"),
    ("cell-position-past-trace", "cell", {"position": FAR}, "bad_request", "position"),
    ("cell-huge-position", "cell", {"position": BIG}, "bad_request", "position"),
    ("heads-position-past-trace", "heads", {"position": FAR}, "bad_request", "position"),
    ("heads-target-outside-vocab", "heads", {"target_id": VOCAB}, "bad_request", "vocabulary"),
    ("pca-position-past-trace", "pca", {"positions": [0, FAR]}, "bad_request", "positions"),
    ("pipeline-position-past-trace", "pipeline", {"position": FAR}, "bad_request", "position"),
    ("pipeline-target-outside-vocab", "pipeline", {"target_id": BIG}, "bad_request", "vocabulary"),
    (
        "attention_layer-block-past-model",
        "attention_layer",
        {"block": N_BLOCKS},
        "bad_request",
        "block",
    ),
    (
        "attention_layer-position-past-trace",
        "attention_layer",
        {"position": FAR},
        "bad_request",
        "position",
    ),
    (
        "attention_layer-target-outside-vocab",
        "attention_layer",
        {"target_id": VOCAB},
        "bad_request",
        "vocabulary",
    ),
    (
        "attention_pattern-block-past-model",
        "attention_pattern",
        {"block": N_BLOCKS},
        "bad_request",
        "block",
    ),
    (
        "attention_pattern-head-past-model",
        "attention_pattern",
        {"head": N_HEADS},
        "bad_request",
        "head",
    ),
    (
        "attention_pattern-start-past-trace",
        "attention_pattern",
        {"start": FAR},
        "bad_request",
        "positions",
    ),
    (
        "attention_pattern-end-before-start",
        "attention_pattern",
        {"start": 3, "end": 2},
        "bad_request",
        "positions",
    ),
    ("mlp_neurons-block-past-model", "mlp_neurons", {"block": N_BLOCKS}, "bad_request", "block"),
    (
        "mlp_neurons-position-past-trace",
        "mlp_neurons",
        {"position": FAR},
        "bad_request",
        "position",
    ),
    (
        "mlp_neurons-target-outside-vocab",
        "mlp_neurons",
        {"target_id": VOCAB},
        "bad_request",
        "vocabulary",
    ),
    ("early_exit-layer-past-model", "early_exit", {"layer": N_LAYERS}, "bad_request", "layer"),
    ("early_exit-huge-layer", "early_exit", {"layer": BIG}, "bad_request", "layer"),
    (
        "steering_vector-layer-past-model",
        "steering_vector",
        {"layer": N_LAYERS},
        "bad_request",
        "layer",
    ),
    (
        "steering_vector-unpaired",
        "steering_vector",
        {"positive": ["a", "b"]},
        "bad_request",
        "pair",
    ),
    (
        "steer_sweep-vector-is-a-trace",
        "steer_sweep",
        {"vector_id": TID},
        "not_found",
        "unknown or expired",
    ),
    ("branch-position-past-ids", "branch", {"position": 5}, "bad_request", "position"),
    ("branch-token-outside-vocab", "branch", {"token_id": VOCAB}, "bad_request", "vocabulary"),
    ("branch-ids-outside-vocab", "branch", {"ids": [VOCAB, 40]}, "bad_request", "out of range"),
    (
        "compare-position-past-prompt",
        "compare",
        {"position_a": FAR, "position_b": 0},
        "bad_request",
        "position",
    ),
    ("compare-one-position", "compare", {"position_a": 0}, "bad_request", "both positions"),
    (
        "patch_sweep-unequal-lengths",
        "patch_sweep",
        {"corrupted": "The capital of France is"},
        "bad_request",
        "same number of tokens",
    ),
    (
        "patch_sweep-answer-outside-vocab",
        "patch_sweep",
        {"answer_id": VOCAB},
        "bad_request",
        "vocabulary",
    ),
    (
        "component_patch-unequal-lengths",
        "component_patch",
        {"corrupted": "The capital of France is"},
        "bad_request",
        "same number of tokens",
    ),
    (
        "component_patch-answer-outside-vocab",
        "component_patch",
        {"answer_id": VOCAB},
        "bad_request",
        "vocabulary",
    ),
    (
        "component_patch-repeated-component",
        "component_patch",
        {"components": ["resid", "resid"]},
        "bad_request",
        "once",
    ),
    ("effect-target-outside-vocab", "effect", {"target_id": VOCAB}, "bad_request", "vocabulary"),
    (
        "effect-target-not-one-token",
        "effect",
        {"target": "not one token at all"},
        "bad_request",
        "one token",
    ),
    (
        "effect-head-past-model",
        "effect",
        {
            "interventions": [
                {"kind": "ablate", "point": "head_out", "block": 0, "heads": [N_HEADS]}
            ]
        },
        "bad_request",
        "head",
    ),
    (
        "attribute-target-outside-vocab",
        "attribute",
        {"target_id": VOCAB},
        "bad_request",
        "vocabulary",
    ),
    (
        "attribute-target-not-one-token",
        "attribute",
        {"target": "zzzz qqq"},
        "bad_request",
        "single token",
    ),
    (
        "attribute-target-twice",
        "attribute",
        {"target": " Paris", "target_id": 5},
        "bad_request",
        "not both",
    ),
    (
        "induction_probe-past-context",
        "induction_probe",
        {"n_tokens": 100},
        "bad_request",
        "context",
    ),
    ("induction_probe-huge-seed", "induction_probe", {"seed": 10**20}, "bad_request", "seed"),
    (
        "switch_model-unknown",
        "switch_model",
        {"name": "no-such-model"},
        "bad_request",
        "tiny-llama",
    ),
    (
        "switch_model-path",
        "switch_model",
        {"name": "../../etc/passwd"},
        "bad_request",
        "unknown model",
    ),
    # `ask.context.interventions` holds any JSON: a lone surrogate deep inside reached the
    # tokenizer (an internal error) until every string of a request was checked at any depth
    (
        "ask-surrogate-deep-in-context",
        "ask",
        {"context": {"interventions": [{"x": json.loads("[" * 100 + '"\\ud800"' + "]" * 100)}]}},
        "bad_request",
        "unicode",
    ),
    (
        "ask-deep-context",
        "ask",
        {"context": {"interventions": [{"x": json.loads("[" * 250 + "]" * 250)}]}},
        None,
        "",
    ),
    (
        "usage-unknown-experiment",
        "usage",
        {"experiments": ["no_such_thing"]},
        "bad_request",
        "experiment",
    ),
]

#: stored ids that do not exist, expired, or hold another kind of result
ID_FIELDS = {"trace_id": "t_nosuchtrace", "vector_id": "v_nosuchvector"}


def id_cases() -> list[Any]:
    out = []
    for rt in REGISTRY:
        base = BASE.get(rt.type, {})
        for field, missing in ID_FIELDS.items():
            if field in rt.schema.model_fields:
                other = VID if field == "trace_id" else TID
                for name, value in (
                    ("unknown", missing),
                    ("expired", EXPIRED),
                    ("other-kind", other),
                ):
                    msg = {**base, field: value}
                    out.append(pytest.param(rt.type, msg, id=f"{rt.type}-{field}-{name}"))
    return out


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(tiny):
    from layerscope.server import create_app
    from layerscope.server.models import LoaderModels

    # "tiny-llama-2" is the same model under another name: switching to it drops stored results
    models = LoaderModels({"tiny-llama": lambda: tiny, "tiny-llama-2": lambda: tiny})
    app = create_app(tiny, models=models)
    with live_server(app) as url:
        with Wire(url, SESSION) as w:
            ids = {EXPIRED: w.trace_works(1)}
            switched = w.ask({"type": "switch_model", "req": 2, "name": "tiny-llama-2"}, 2)
            assert switched["type"] == "model" and switched["dropped"] >= 1, switched
            ids[TID] = w.trace_works(3)
            vec = w.ask(
                {"type": "steering_vector", "req": 4, "positive": ["good"], "negative": ["bad"]}, 4
            )
            assert vec["type"] == "steering_vector", vec
            ids[VID] = vec["vector_id"]
        with httpx.Client(trust_env=False, timeout=10) as http:
            yield url, ids, http


def fill(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with the stored ids filled in and :data:`DROP` fields left out."""
    if isinstance(value, Raw):
        return value
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items() if v is not DROP}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def exchange(server, type_: str, fields: dict, req: int = 7) -> dict:
    """Send one request on a fresh connection; its terminal frame. Then check that the same
    connection still gets answers, and that the server says it is healthy (the last test of the
    module also runs a trace)."""
    url, ids, http = server
    msg = {"type": type_, "req": req, **fill(fields, ids)}
    with Wire(url, SESSION) as w:
        end = w.ask(encode(msg), req)
        w.still_works(ids[TID])
    health = http.get(f"http://{url}/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    return end


def check_error(end: dict, code: str, words: list[str]) -> None:
    assert end["type"] == "error", f"accepted: {end}"
    assert end["code"] == code, end
    assert end["req"] in (7, None), end
    text = end["message"].lower()
    assert any(w.lower() in text for w in words), f"{end['message']!r} names none of {words}"


# ---------------------------------------------------------------- tests


def test_the_table_covers_every_request_type():
    """A new request type needs a base request here (and its own semantic cases)."""
    assert set(BASE) == {rt.type for rt in REGISTRY}


def test_every_base_request_is_answered(server):
    """So each case below fails for the one defect it adds, not for something else."""
    url, ids, _ = server
    with Wire(url, SESSION) as w:
        for req, (type_, fields) in enumerate(sorted(BASE.items()), start=10):
            end = w.ask(encode({"type": type_, "req": req, **fill(fields, ids)}), req, timeout=120)
            assert end["type"] in REGISTRY[type_].info().terminal, (type_, end)


@pytest.mark.parametrize(("type_", "fields", "field"), schema_cases())
def test_schema_violations_are_bad_requests_that_name_the_field(server, type_, fields, field):
    value = fields.get(field)
    # the field's name, or (a number the schema leaves unbounded, refused by the engine) its value
    words = [field, str(value)] if isinstance(value, int) and abs(value) == BIG else [field]
    check_error(exchange(server, type_, fields), "bad_request", words)


@pytest.mark.parametrize(
    ("type_", "fields", "code", "words"),
    [pytest.param(t, f, c, w, id=i) for i, t, f, c, w in SEMANTIC],
)
def test_what_the_schema_cannot_say_gets_a_clear_error(server, type_, fields, code, words):
    end = exchange(server, type_, {**BASE[type_], **fields})
    if code is None:  # odd but legal input: answered, or refused in words; never `internal`
        assert end["type"] != "error" or end["code"] == "bad_request", end
    elif code == ANSWERED:
        assert end["type"] in REGISTRY[type_].info().terminal, end
    else:
        check_error(end, code, [words])


@pytest.mark.parametrize(("type_", "fields"), id_cases())
def test_unknown_expired_or_wrong_kind_ids_are_not_found(server, type_, fields):
    check_error(exchange(server, type_, fields), "not_found", ["unknown or expired"])


@pytest.mark.parametrize(
    ("case", "req"),
    [
        pytest.param({"type": "trace", "req": "1", "prompt": "x"}, None, id="req-string"),
        pytest.param({"type": "trace", "req": -1, "prompt": "x"}, -1, id="req-negative"),
        pytest.param({"type": "trace", "req": 2**60, "prompt": "x"}, 2**60, id="req-huge"),
        pytest.param({"type": "trace", "req": 7.0, "prompt": "x"}, None, id="req-float"),
        pytest.param({"type": "trace", "req": 1.5, "prompt": "x"}, None, id="req-fraction"),
        pytest.param({"type": "trace", "req": None, "prompt": "x"}, None, id="req-null"),
        pytest.param({"type": "no_such_request", "req": 7}, 7, id="unknown-type"),
        pytest.param({"req": 7, "prompt": "x"}, 7, id="no-type"),
        pytest.param({"type": 5, "req": 7}, 7, id="type-not-a-string"),
        pytest.param({"type": "\ud800", "req": 7}, 7, id="type-lone-surrogate"),
        pytest.param(
            {"type": "trace", "req": 7, "prompt": "x", "\ud800": 1}, 7, id="key-lone-surrogate"
        ),
        pytest.param({"type": "trace", "req": 7, "prompt": "x", "k" * 5000: 1}, 7, id="key-huge"),
        pytest.param("[1, 2, 3]", None, id="array"),
        pytest.param('"text"', None, id="string"),
        pytest.param("null", None, id="null"),
        pytest.param("NaN", None, id="nan"),
        pytest.param("", None, id="empty"),
        pytest.param("{not json", None, id="malformed"),
        pytest.param('{"type": "trace", "req": 7, "prompt": "x"', None, id="truncated"),
        pytest.param('{"type": "trace", "req": 7, "prompt": "x"} {}', None, id="trailing-data"),
        pytest.param('{"type": "trace", "type": "cell", "req": 7}', 7, id="duplicate-key"),
        pytest.param("x" * 99_000, None, id="near-limit-garbage"),
    ],
)
def test_unreadable_messages_are_bad_requests(server, case, req):
    url = server[0]
    text = case if isinstance(case, str) else encode(case)
    with Wire(url, SESSION) as w:
        w.send(text)
        end = w.frame()  # nothing else is in flight
        assert end["type"] == "error" and end["code"] == "bad_request", end
        assert end["req"] in (req, None), end
        assert "invalid" in end["message"], end
        assert len(end["message"]) <= 1000
        w.trace_works()


def test_a_huge_array_within_the_message_limit_is_refused_quickly(server):
    # ~20000 ids fit in the message limit: the schema admits them, the context does not
    end = exchange(server, "trace", {"prompt": DROP, "ids": [40] * 20_000})
    check_error(end, "bad_request", ["context"])


def test_many_bad_requests_on_one_connection_leave_it_working(server):
    url, ids, _ = server
    with Wire(url, SESSION) as w:
        for req in range(1, 41):
            w.send(
                encode(
                    {
                        "type": "cell",
                        "req": req,
                        "trace_id": ids[TID],
                        "layer": N_LAYERS,
                        "position": 0,
                    }
                )
            )
        ends = {}
        while len(ends) < 40:  # answers may come in any order
            f = w.frame()
            ends[f["req"]] = f
        assert set(ends) == set(range(1, 41))
        assert all(
            e["type"] == "error" and e["code"] in ("bad_request", "busy") for e in ends.values()
        )
        w.trace_works()


# ---------------------------------------------------------------- the transport (protocol.py)


def test_deeply_nested_json_is_a_bad_request(server):
    url = server[0]
    with Wire(url, SESSION) as w:
        w.send(
            '{"type": "trace", "req": 7, "prompt": "x", "a": ' + "[" * 30_000 + "]" * 30_000 + "}"
        )
        check_error(w.answer(None)[-1], "bad_request", ["invalid", "deep", "nest"])
        w.trace_works()


def test_a_binary_frame_is_a_bad_request(server):
    url = server[0]
    with Wire(url, SESSION) as w:
        w.send(b'{"type": "trace", "req": 7, "prompt": "x"}')
        check_error(w.answer(None)[-1], "bad_request", ["binary", "text"])
        w.trace_works()


def test_invalid_utf8_does_not_hurt_the_server(server):
    """A text frame that is not UTF-8 may close that connection (1007) or be refused; either way
    the server keeps serving."""
    url = server[0]
    with Wire(url, SESSION) as w:
        w.send(b'{"type": "trace", "req": 7, "prompt": "\xff\xfe"}', text=True)
        try:
            end = w.answer(None, timeout=10)[-1]
            check_error(end, "bad_request", ["invalid", "utf"])
        except Exception as exc:  # the transport closed the connection
            assert "1007" in str(exc) or "closed" in str(exc).lower(), exc
    with Wire(url, SESSION) as w:
        w.trace_works()


def test_an_oversized_message_is_refused_and_the_connection_survives(server):
    url = server[0]
    with Wire(url, SESSION) as w:
        w.send(encode({"type": "trace", "req": 7, "prompt": "x" * 150_000}))
        check_error(w.answer(None)[-1], "bad_request", ["longer", "large", "limit", "bytes"])
        w.trace_works()


def test_after_all_that_the_server_still_traces(server):
    url, _, http = server
    with Wire(url, SESSION) as w:
        w.trace_works()
    health = http.get(f"http://{url}/api/health").json()
    assert health["status"] == "ok" and health["pending"] == 0
