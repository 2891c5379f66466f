"""The command line: readable table, one JSON object, clear errors (exit 2, no traceback)."""

from __future__ import annotations

import json

import pytest

from layerscope.cli import main
from tiny import save_tiny


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(save_tiny("llama", tmp_path_factory.mktemp("m") / "tiny-llama"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table(capsys, model_dir):
    code, out, _ = run(capsys, "trace", "The capital of France is", "--model", model_dir)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("model tiny-llama")
    assert any(line.startswith("h_2 ") for line in lines) and any(
        line.startswith("lock-in") for line in lines
    )


def test_json_is_one_object_with_the_documented_keys(capsys, model_dir):
    code, out, _ = run(
        capsys, "trace", "Hello world", "--model", model_dir, "--json", "--generate", "3",
        "--lens-k", "4", "--temperature", "0.8", "--top-k", "20", "--seed", "5",
    )
    assert code == 0
    d = json.loads(out)
    assert {"tokens", "n_prompt", "layers", "lens", "lock_in", "token_text"} <= set(d)
    assert len(d["lens"]["top_ids"][0][0]) == 4
    assert len(d["tokens"]) == d["n_prompt"] + 3
    code, again, _ = run(
        capsys, "trace", "Hello world", "--model", model_dir, "--json", "--generate", "3",
        "--lens-k", "4", "--temperature", "0.8", "--top-k", "20", "--seed", "5",
    )
    assert again == out  # byte-identical


def test_ids_are_traced_exactly(capsys, model_dir):
    code, out, _ = run(capsys, "trace", "--ids", "3,4,5", "--model", model_dir, "--json")
    assert code == 0
    assert [t["id"] for t in json.loads(out)["tokens"]] == [3, 4, 5]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trace", ""], "prompt is empty"),
        (["trace"], "prompt is empty"),
        (["trace", "--ids", "1,,2"], "comma-separated integers"),
        (["trace", "--ids", "a,b"], "comma-separated integers"),
        (["trace", "--ids", "1,99999"], "out of range"),
        (["trace", "word " * 300], "context"),
        (["trace", "hi", "--model", "no-such-model"], "unknown model"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, model_dir, argv, message):
    if "--model" not in argv:
        argv = [*argv, "--model", model_dir]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err and out == ""


def test_corrupt_weights_exit_2(capsys, tmp_path):
    path = save_tiny("gpt2", tmp_path / "broken")
    (path / "model.safetensors").write_bytes(b"\x00" * 64)
    code, _, err = run(capsys, "trace", "hi", "--model", str(path))
    assert code == 2 and "corrupt or truncated" in err


def test_models_lists_the_catalog(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "smollm2-135m" in out and "nanochat-d32" in out


def test_attribute_prints_a_table_and_one_json_object(capsys, model_dir):
    code, out, _ = run(capsys, "attribute", "The capital of France is", "--model", model_dir)
    assert code == 0 and "completeness" in out and "[  0]" in out
    argv = ["attribute", "The capital of France is", "--model", model_dir, "--json"]
    code, out, _ = run(capsys, *argv, "--steps", "8")
    d = json.loads(out)
    assert {"tokens", "scores", "target", "target_id", "baseline", "steps", "delta"} <= set(d)
    assert d["steps"] == 8 and len(d["scores"]) == len(d["tokens"])
    code, again, _ = run(capsys, *argv, "--steps", "8")
    assert again == out  # deterministic
    code, out, _ = run(capsys, *argv, "--method", "gradient_x_input", "--target", d["tokens"][1])
    assert json.loads(out)["delta"] is None and json.loads(out)["target"] == d["tokens"][1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["attribute", " "], "prompt is empty"),
        (["attribute", "Hello", "--steps", "0"], "steps must be"),
        (["attribute", "Hello", "--target", "xqzj world zzz"], "single token"),
    ],
)
def test_attribute_bad_input_exits_2(capsys, model_dir, argv, message):
    code, out, err = run(capsys, *argv, "--model", model_dir)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_trace_with_an_ablation_says_what_changed(capsys, model_dir):
    argv = ["trace", "The capital of France is", "--model", model_dir]
    code, out, _ = run(capsys, *argv, "--ablate-heads", "0.1,1.2", "--ablate-mlp", "1")
    assert code == 0
    assert "experiment: ablate heads 0.1, 1.2; MLP 1 (zero)" in out
    assert "next token after the prompt: clean" in out and "log p" in out
    code, out, _ = run(capsys, *argv, "--json", "--ablate-attn", "1", "--ablate-mode", "mean")
    d = json.loads(out)
    assert d["settings"]["interventions"][0]["attn"] == [1]
    e = d["experiment"]["effect"]
    assert {"target_id", "p_clean", "p_new", "logp_clean", "logp_new", "top_clean"} <= set(e)
    assert e["p_new"] != e["p_clean"]
    code, plain, _ = run(capsys, *argv, "--json")
    assert "experiment" not in json.loads(plain)  # a plain trace's JSON is unchanged


def test_trace_with_steering_reports_the_vector_and_both_generations(capsys, model_dir):
    argv = ["trace", "Hello", "--model", model_dir, "--generate", "4", "--steer-layer", "1"]
    code, out, _ = run(
        capsys,
        *argv,
        "--steer-positive",
        "Once upon",
        "--steer-negative",
        "1 2 3",
        "--steer-strength",
        "6",
    )
    assert code == 0
    assert "steering vector: actadd at layer h_1" in out
    assert "generated, clean:" in out and "generated, now:" in out
    code, out, _ = run(
        capsys,
        *argv,
        "--json",
        "--steer-positive",
        "Once",
        "--steer-negative",
        "Hello",
        "--steer-positive",
        "Rome",
        "--steer-negative",
        "Paris",
    )
    steer = json.loads(out)["settings"]["interventions"][0]
    assert steer["kind"] == "steer" and steer["where"] == "generated" and steer["strength"] == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ablate-heads", "3"], "block.head pairs"),
        (["--ablate-heads", "0.9"], "head 9"),
        (["--ablate-mlp", "1,x"], "block numbers"),
        (["--ablate-layer", "7"], "block 7"),
        (["--ablate-layer", "0,1"], "every attention layer and every MLP"),
        (["--ablate-mode", "mean"], "need something to ablate"),
        (["--ablate-mlp", "0", "--ablate-reference", "Hi"], "--ablate-mode mean"),
        (["--steer-positive", "Love"], "both --steer-positive and --steer-negative"),
        (["--steer-positive", "a", "--steer-negative", "b", "--steer-strength", "nan"], "finite"),
        (["--steer-positive", "a", "--steer-negative", "b", "--steer-layer", "9"], "0..2"),
    ],
)
def test_bad_experiment_flags_exit_2(capsys, model_dir, argv, message):
    code, out, err = run(capsys, "trace", "Hello", "--model", model_dir, *argv)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_serve_passes_allowed_hosts_and_origins(capsys, monkeypatch):
    import layerscope.server

    seen = {}
    monkeypatch.setattr(layerscope.server, "serve", lambda *a, **k: seen.update(args=a, **k))
    code, _, _ = run(
        capsys, "serve", "--host", "0.0.0.0", "--port", "8123",
        "--allow-host", "lab.example", "--allow-host", "10.0.0.5",
        "--allow-origin", "https://notebook.example:8888",
    )
    assert code == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123
    assert seen["allow_hosts"] == ["lab.example", "10.0.0.5"]
    assert seen["allow_origins"] == ["https://notebook.example:8888"]


@pytest.mark.parametrize("origin", ["null", "file:///tmp/x.html", "https://a.example/path"])
def test_serve_refuses_a_bad_origin_before_loading_anything(capsys, monkeypatch, origin):
    import layerscope.server

    monkeypatch.setattr(layerscope.server, "serve", lambda *a, **k: pytest.fail("served"))
    code, out, err = run(capsys, "serve", "--allow-origin", origin)
    assert code == 2 and "--allow-origin" in err and "Traceback" not in err and out == ""


def test_serve_passes_its_limits_and_refuses_bad_ones(capsys, monkeypatch):
    import layerscope.server
    from layerscope.server.limits import Limits

    seen = {}
    monkeypatch.setattr(layerscope.server, "serve", lambda *a, **k: seen.update(k))
    code, _, _ = run(capsys, "serve", "--limit", "client_pending=4", "--limit", "client_rate=2.5")
    assert code == 0
    assert seen["limits"] == Limits(client_pending=4, client_rate=2.5)
    monkeypatch.setattr(layerscope.server, "serve", lambda *a, **k: pytest.fail("served"))
    code, out, err = run(capsys, "serve", "--limit", "queue=3")
    assert code == 2 and "--limit" in err and "client_pending" in err and out == ""
