"""``layerscope ask``: the --json shape, --retrieve-only, the model and endpoint paths."""

from __future__ import annotations

import json

import pytest

from layerscope.cli import main
from layerscope.learn import kb
from learn.fake_openai import FakeOpenAI

QUESTION = "How does the temperature change sampling?"


@pytest.fixture(autouse=True)
def docs(docs_dir, monkeypatch):
    monkeypatch.setattr(kb, "DOCS_DIR", docs_dir)
    return docs_dir


def run(capsys, *argv):
    code = main(["ask", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_shape_retrieve_only(capsys):
    code, out, _ = run(capsys, QUESTION, "--retrieve-only", "--json")
    assert code == 0
    obj = json.loads(out)
    assert set(obj) == {"answer", "sources"} and isinstance(obj["answer"], str)
    assert obj["sources"] and all(
        set(s) == {"doc", "title", "text", "score"} and isinstance(s["score"], float)
        for s in obj["sources"]
    )
    assert obj["sources"][0]["doc"] == "sampling"
    assert obj["sources"][0]["title"] == "Choosing the next token"
    assert len(obj["sources"]) == 4 and "[1]" in obj["answer"]


def test_text_output_lists_the_sources(capsys):
    code, out, _ = run(capsys, QUESTION, "--retrieve-only", "--k", "2")
    assert code == 0
    assert "[1] Choosing the next token — Temperature  (sampling.md#temperature)" in out
    assert "[3]" not in out.split("Sources")[1]


def test_an_empty_question_is_an_error(capsys):
    code, _, err = run(capsys, "  ", "--retrieve-only")
    assert code == 2 and "empty" in err


def test_the_endpoint_writes_the_answer(capsys, monkeypatch):
    reply = ["Zero means greedy decoding: ", "always the most likely token [1]."]
    with FakeOpenAI(reply) as fake:
        monkeypatch.setenv("LAYERSCOPE_CHAT_API_KEY", "k")
        code, out, _ = run(capsys, QUESTION, "--json", "--chat-endpoint", fake.url)
    assert code == 0 and json.loads(out)["answer"] == "".join(reply)
    assert fake.requests[0]["body"]["model"] == "default"


def test_a_model_directory_writes_or_falls_back(capsys, tmp_path):
    from tiny import save_tiny

    path = save_tiny("llama", tmp_path / "tiny")
    code, out, _ = run(capsys, QUESTION, "--model", str(path))
    assert code == 0
    assert "context" in out and "(extractive answer)" in out  # 128 tokens hold no sources
