"""nanochat checkpoints through the CLI: a checkpoints layout by path, --step, clear errors."""

from __future__ import annotations

import json

from layerscope.cli import main


def test_trace_a_checkpoints_dir_with_step(tmp_path, encoding, helpers, capsys):
    ck = tmp_path / "chatsft_checkpoints" / "d2"
    helpers.write_checkpoint(ck, encoding, step=100, seed=1)
    helpers.write_checkpoint(ck, encoding, step=200, seed=2)

    def trace(*extra):
        code = main(
            [
                "trace",
                "Hello world",
                "--model",
                str(tmp_path / "chatsft_checkpoints"),
                "--json",
                *extra,
            ]
        )
        out, err = capsys.readouterr()
        return code, out, err

    code, newest, _ = trace()
    assert code == 0
    code, step200, _ = trace("--step", "200")
    assert code == 0 and step200 == newest  # newest step by default
    code, step100, _ = trace("--step", "100")
    assert code == 0 and json.loads(step100)["lens"] != json.loads(newest)["lens"]
    code, out, err = trace("--step", "999")
    assert code == 2 and out == "" and "999" in err and "Traceback" not in err


def test_step_is_refused_for_non_nanochat_models(capsys):
    assert main(["trace", "hi", "--model", "smollm2-135m", "--step", "3"]) == 2
    assert "only applies to nanochat" in capsys.readouterr().err
