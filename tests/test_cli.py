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
