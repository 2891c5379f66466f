"""The OpenAI-compatible endpoint path, against a fake server on loopback."""

from __future__ import annotations

import pytest

from layerscope.learn.chat import Delta, Done, Sources, answer, collect, generator_for
from layerscope.learn.endpoint import EndpointConfig, EndpointGenerator
from layerscope.learn.generate import GenerationError
from learn.fake_openai import FakeOpenAI

KEY = "sk-test-0123456789-secret"
MESSAGES = [{"role": "user", "content": "hi"}]


def test_streams_sse_and_sends_the_key_only_in_the_header():
    with FakeOpenAI(["Hel", "lo", " there"]) as fake:
        gen = EndpointGenerator(EndpointConfig(fake.url, "my-model", KEY))
        assert list(gen.stream(MESSAGES)) == ["Hel", "lo", " there"]
    (req,) = fake.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    assert req["body"]["model"] == "my-model" and req["body"]["stream"] is True
    assert req["body"]["messages"] == MESSAGES
    assert KEY not in repr(gen.config)


def test_no_key_no_authorization_header():
    with FakeOpenAI() as fake:
        list(EndpointGenerator(EndpointConfig(fake.url, "m")).stream(MESSAGES))
    assert "Authorization" not in fake.requests[0]["headers"]


def test_a_plain_json_answer_works_too():
    with FakeOpenAI(["one answer"], sse=False) as fake:
        assert list(EndpointGenerator(EndpointConfig(fake.url, "m")).stream(MESSAGES)) == [
            "one answer"
        ]


def test_errors_are_generation_errors_without_the_key():
    with FakeOpenAI(status=401) as fake:
        gen = EndpointGenerator(EndpointConfig(fake.url, "m", KEY))
        with pytest.raises(GenerationError, match="HTTP 401") as err:
            list(gen.stream(MESSAGES))
    assert KEY not in str(err.value)
    with FakeOpenAI() as fake:
        dead = fake.url  # nothing listens here once the server is closed
    with pytest.raises(GenerationError, match="failed"):
        list(EndpointGenerator(EndpointConfig(dead, "m", KEY), timeout=5).stream(MESSAGES))
    with pytest.raises(GenerationError, match="http"):
        list(EndpointGenerator(EndpointConfig("ftp://x", "m")).stream(MESSAGES))


def test_configuration_from_the_environment(monkeypatch):
    assert EndpointConfig.from_env() is None
    monkeypatch.setenv("LAYERSCOPE_CHAT_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LAYERSCOPE_CHAT_MODEL", "llama")
    monkeypatch.setenv("LAYERSCOPE_CHAT_API_KEY", KEY)
    cfg = EndpointConfig.from_env()
    assert (cfg.url, cfg.model, cfg.api_key) == ("http://127.0.0.1:9/v1", "llama", KEY)
    assert EndpointConfig.from_env("http://127.0.0.1:1/v1", "other").model == "other"
    assert isinstance(generator_for(None), EndpointGenerator)  # the endpoint comes first


def test_chat_answers_through_the_endpoint(small_index):
    reply = ["Greedy decoding ", "always takes the most likely token [1]."]
    with FakeOpenAI(reply) as fake:
        gen = EndpointGenerator(EndpointConfig(fake.url, "m", KEY))
        events = list(answer("What does temperature zero mean?", None, (), gen, index=small_index))
    assert isinstance(events[0], Sources)
    assert [e.text for e in events if isinstance(e, Delta)] == reply
    done = events[-1]
    assert isinstance(done, Done) and done.mode == "endpoint"
    assert done.answer == "".join(reply).strip()
    system = fake.requests[0]["body"]["messages"][0]["content"]
    assert "[1] Choosing the next token — Temperature" in system


def test_a_failing_endpoint_falls_back_to_extractive(small_index):
    with FakeOpenAI(status=500) as fake:
        gen = EndpointGenerator(EndpointConfig(fake.url, "m", KEY))
        done = collect(answer("What is top-k sampling?", None, (), gen, index=small_index))
    assert done.mode == "extractive" and "HTTP 500" in done.note
    assert "[1]" in done.answer and KEY not in done.answer + done.note
