"""The load test (bench/bench_load.py): its bookkeeping, and a quick run on the real default model
that checks the report's structure and that no frame reached the wrong client (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from load_clients import Client, Record, Shared, overlapping  # noqa: E402

TYPES = ("trace", "heads", "heads_tokens", "cell", "pca", "effect", "ask")


def test_a_frame_with_another_clients_request_number_is_a_wrong_client_violation():
    shared = Shared()
    client = Client(0, "ws://127.0.0.1:1/ws", shared, seed=0, req_base=1_000_000)
    client.next_req = 1_000_003  # requests 1_000_000 .. 1_000_002 were sent
    client._stray({"type": "cell", "req": 2_000_000})  # another client's number
    client._stray({"type": "cell", "req": 1_000_001})  # ours, after it ended
    client._stray({"type": "error", "req": None, "code": "bad_request", "message": "?"})
    client._stray({"type": "model", "req": None})  # a model switch: sent to everyone
    assert shared.violations == {"wrong_client": 1, "late_frame": 1, "unattributed_frame": 1}


def test_answers_about_another_trace_or_cell_are_counted():
    shared = Shared()
    client = Client(0, "ws://127.0.0.1:1/ws", shared, seed=0, req_base=1)
    client._check_answer({"trace_id": "t_a", "layer": 3, "position": 2}, "t_a", {"layer": 3})
    assert not shared.violations
    client._check_answer({"trace_id": "t_b", "position": 2}, "t_a", {"position": 2})
    client._check_answer({"trace_id": "t_a", "position": 1}, "t_a", {"position": 2})
    assert shared.violations == {"wrong_trace_id": 1, "wrong_content": 1}


def test_interactions_overlapping_another_clients_trace():
    trace = Record("trace", client=0, t0=1.0, t1=5.0, outcome="ok")
    own = Record("cell", client=0, t0=2.0, t1=2.1, outcome="ok")  # same client: not counted
    during = Record("heads", client=1, t0=3.0, t1=3.2, outcome="ok")
    after = Record("pca", client=1, t0=6.0, t1=6.1, outcome="ok")
    before = Record("cell", client=2, t0=0.5, t1=1.5, outcome="ok")  # sent before it began
    records = [trace, own, during, after, before]
    assert overlapping([own, during, after, before], ("trace",), records) == [during]
    assert overlapping([own, during, after, before], ("ask",), records) == []


@pytest.mark.integration
def test_quick_load_run_reports_every_request_type_and_no_wrong_client(tmp_path):
    # --max-seconds far above a quick run's length: every session runs to its end
    out = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_load.py"),
            "--quick",
            "--max-seconds",
            "600",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["config"]["clients"] == [1, 2] and doc["config"]["quick"]
    assert doc["server"]["model"]["name"] == "smollm2-135m"
    assert doc["server"]["stop"]["how"] == "sigint" and doc["server"]["stop"]["returncode"] == 0
    assert not doc["warmup"]["errors"] and set(doc["warmup"]["ms"]) == set(TYPES)
    assert [level["clients"] for level in doc["levels"]] == [1, 2]
    for level in doc["levels"]:
        assert level["violations"] == {}
        assert level["errors_total"] == 0 and level["busy_total"] == 0
        assert level["sessions_completed"] == level["clients"]
        for type_ in TYPES:
            row = level["requests"][type_]
            assert row["count"] >= 1 and row["ok"] == row["count"], (type_, row)
            assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
        # one session: a trace, two heads grids and their top tokens, three cells, one pca per
        # client, then an ablation and a question
        n = level["clients"]
        counts = [level["requests"][t]["count"] for t in TYPES]
        assert counts == [n, 2 * n, 2 * n, 3 * n, n, n, n]
        assert level["requests"]["trace"]["first_layer"]["n"] == n
        assert level["interactive"]["all"]["n"] == 6 * n
        rss = level["memory"]["rss_mb"]
        assert 0 < rss["start"] <= rss["peak"] and rss["end"] <= rss["peak"]
        assert rss["series"] and level["throughput"]["traces_per_s"] > 0
    probe = doc["disconnect"]
    assert probe["tokens"] > 0 and probe["idle_after_s"] is not None
    # with one client nothing else runs beside its interactions
    first = doc["levels"][0]["interactive"]
    assert first["during_other_trace"]["n"] == 0 and first["no_other_model_job"]["n"] == 6
    second = doc["levels"][1]["interactive"]
    by_type = sum(second[f"{t}_during_other_trace"]["n"] for t in ("cell", "heads", "pca"))
    assert by_type == second["during_other_trace"]["n"]
