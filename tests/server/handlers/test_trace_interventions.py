"""A trace request carrying the component ablation and the layer steer (the experiments' runs)."""

from __future__ import annotations

import pytest

from server.server_helpers import frames_until_done


def trace(ws, req: int, interventions: list, **extra) -> list[dict]:
    msg = {"type": "trace", "req": req, "prompt": "The capital of France is"}
    ws.send_json({**msg, "interventions": interventions, **extra})
    return frames_until_done(ws, req)


def last_layer(frames: list[dict]) -> dict:
    n = frames[0]["n_lens_layers"]
    return next(f for f in frames if f["type"] == "layer" and f["layer"] == n - 1)


def test_component_ablation_and_layer_steer_ride_on_a_trace(ws, tiny):
    d = tiny.info.d_model
    ablate = {
        "kind": "ablate",
        "heads": [[0, 1], [1, 2]],
        "attn": [],
        "mlps": [1],
        "layers": [],
        "mode": "zero",
        "reference_ids": None,
        "positions": None,
    }
    steer = {"kind": "steer", "layer": 1, "vector": [0.5] * d, "strength": 3.0}
    clean = trace(ws, 1, [])
    frames = trace(ws, 2, [ablate, steer], generate=2)
    start, done = frames[0], frames[-1]
    assert done["type"] == "done"
    assert start["interventions"][0]["heads"] == [[0, 1], [1, 2]]
    assert start["interventions"][0]["mlps"] == [1]
    assert start["interventions"][1]["layer"] == 1 and start["interventions"][1]["where"] == "all"
    assert last_layer(frames)["top_probs"][4] != last_layer(clean)["top_probs"][4]
    aligned = {"kind": "steer", "layer": 0, "vector": [[0.1] * d, [0.2] * d], "strength": 0}
    frames = trace(ws, 3, [aligned])
    assert frames[0]["interventions"][0]["where"] == "aligned"
    assert last_layer(frames)["top_probs"] == last_layer(clean)["top_probs"]  # strength 0


@pytest.mark.parametrize(
    ("iv", "words"),
    [
        ({"kind": "ablate", "heads": [[9, 0]]}, "block 9"),
        ({"kind": "ablate", "heads": [[0, 7]]}, "head 7"),
        ({"kind": "ablate", "layers": [0, 1]}, "every attention layer"),
        ({"kind": "ablate"}, "switches off nothing"),
        ({"kind": "ablate", "heads": [3, 4]}, "pairs"),
        ({"kind": "steer", "layer": 1, "vector": [1.0], "strength": 1}, "needs 64 numbers"),
        ({"kind": "steer", "layer": 7, "vector": [1.0] * 64}, "lens layers"),
        ({"kind": "steer", "layer": 1, "vector": [1.0] * 64, "strength": 1e9}, "strength"),
        ({"kind": "steer", "layer": 1, "vector": [1.0] * 64, "scale": 2}, "scale"),
    ],
)
def test_bad_experiments_get_an_error_frame_and_the_socket_survives(ws, iv, words):
    (f,) = trace(ws, 5, [iv])
    assert f["type"] == "error" and f["code"] == "bad_request" and words in f["message"]
    assert trace(ws, 6, [])[-1]["type"] == "done"
