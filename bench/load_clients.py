"""Simulated explorer users for ``bench_load.py``: WebSocket sessions that trace a prompt, then
scrub through it (per-head lens, cell top-k, PCA), ablate a head and ask the chat — checking that
every frame they get is an answer to one of their own requests.

Each client sends one request at a time and waits a short, seeded-random think time between
interactions, like a person scrubbing. Request numbers are unique over all clients of a run
(client ``i`` of a level numbers from ``req_base``), so a frame carrying another client's number
is provably a result sent to the wrong client.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: realistic prompts of about 5-30 tokens (SmolLM2's tokenizer)
PROMPTS = (
    "The capital of France is",
    "The Eiffel Tower is located in the city of",
    "When Mary and John went to the store, John gave a drink to",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "The quick brown fox jumps over the lazy dog. The quick brown fox",
    "In 1969, the first person to walk on the Moon was",
    "Water boils at a temperature of 100 degrees",
    "She opened the old wooden door slowly and saw that the room was full of",
    "The opposite of hot is cold, and the opposite of big is",
    "My favourite programming language is Python because it is easy to read and",
)
#: questions a student asks the chat
QUESTIONS = (
    "What is the logit lens?",
    "What does ablating an attention head show?",
    "Why does the prediction settle at a middle layer?",
    "What is an induction head?",
    "What does the residual stream carry?",
    "What is KL divergence in the lens?",
)
#: answered from stored results, never behind a whole trace; "heads" is the grid the page draws
#: first (k=0: contributions only), "heads_tokens" the hover's top tokens it asks for next (k=5)
INTERACTIVE = ("cell", "heads", "pca")
MODEL_JOBS = ("trace", "effect", "ask", "heads_tokens")  # the model lane: run one at a time


@dataclass
class Record:
    """One request as the client saw it (seconds on this process's ``perf_counter``)."""

    type: str
    client: int
    t0: float  # sent
    t1: float  # terminal frame (or the error / timeout) received
    outcome: str  # "ok", an error code, or client side: "timeout", "closed", "unfinished"
    first_layer: float | None = None  # trace: seconds from sending to the first ``layer`` frame
    frames: int = 0
    bytes: int = 0

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


@dataclass
class Shared:
    """What all clients of one level write to: records, violations and trace ownership."""

    records: list[Record] = field(default_factory=list)
    violations: Counter = field(default_factory=Counter)
    trace_owner: dict[str, int] = field(default_factory=dict)
    sessions_done: int = 0


class RequestFailed(Exception):
    """A request ended with an error frame, a timeout or a closed connection."""


class Client:
    """One simulated user on one WebSocket connection."""

    def __init__(
        self,
        index: int,
        url: str,
        shared: Shared,
        *,
        seed: int,
        req_base: int,
        think: tuple[float, float] = (0.05, 0.2),
        timeout: float = 600.0,
        ask_mode: str = "model",
    ) -> None:
        self.index = index
        self.url = url
        self.shared = shared
        self.rng = random.Random(seed)
        self.req_base = req_base
        self.next_req = req_base
        self.think_range = think
        self.timeout = timeout
        self.ask_mode = ask_mode
        self.vocab: dict[str, str] = {}
        self.ws: Any = None
        self.hard_stop = float("inf")
        self.gone = False  # the server closed the connection
        self.hello: dict[str, Any] = {}

    # ------------------------------------------------------------------ connection
    async def run(self, sessions: int, deadline: float, hard_stop: float = float("inf")) -> None:
        """Connect, then run up to ``sessions`` sessions, starting nothing after ``deadline``;
        a request still unanswered at ``hard_stop`` is given up ("unfinished") and the client
        disconnects."""
        from websockets.asyncio.client import connect

        self.hard_stop = hard_stop
        async with connect(self.url, max_size=None, open_timeout=60) as ws:
            self.ws = ws
            self.hello = json.loads(await asyncio.wait_for(ws.recv(), 60))
            for _ in range(sessions):
                if time.perf_counter() >= deadline or self.gone:
                    break
                if await self.session(deadline):
                    self.shared.sessions_done += 1

    async def request(self, type_: str, label: str | None = None, **fields: Any) -> dict:
        """Send one request and read frames until its terminal frame; returns that frame.

        Records the request (under ``label``, default its type), even when it fails; frames that
        answer other requests are counted as violations. Raises :class:`RequestFailed` on an
        error frame, a timeout or a close."""
        req = self.next_req
        self.next_req += 1
        terminal = {"error", *self.hello["requests"][type_]["terminal"]}
        rec = Record(label or type_, self.index, time.perf_counter(), 0.0, "ok")
        self.shared.records.append(rec)
        stop = min(rec.t0 + self.timeout, self.hard_stop)
        frame: dict[str, Any] = {}
        try:
            await self.ws.send(json.dumps({"type": type_, "req": req, **fields}))
            while True:
                raw = await asyncio.wait_for(self.ws.recv(), max(0.0, stop - time.perf_counter()))
                frame = json.loads(raw)
                self.vocab.update(frame.get("vocab") or {})
                if frame.get("req") != req:
                    self._stray(frame)
                    continue
                rec.frames += 1
                rec.bytes += len(raw)
                if frame["type"] == "layer" and rec.first_layer is None:
                    rec.first_layer = time.perf_counter() - rec.t0
                if frame["type"] == "start":
                    self._check_start(frame, fields)
                if frame["type"] in terminal:
                    break
        except TimeoutError:
            rec.outcome = "unfinished" if time.perf_counter() >= self.hard_stop else "timeout"
        except Exception as exc:  # the connection closed under us
            from websockets.exceptions import ConnectionClosed

            if not isinstance(exc, ConnectionClosed):
                raise
            rec.outcome = "closed"
        rec.t1 = time.perf_counter()
        if rec.outcome == "ok" and frame.get("type") == "error":
            rec.outcome = frame.get("code", "error")
        if rec.outcome != "ok":
            if rec.outcome == "closed":
                self.gone = True
                raise RequestFailed("closed")
            raise RequestFailed(f"{type_}: {rec.outcome}: {frame.get('message', '')}")
        return frame

    def _stray(self, frame: dict) -> None:
        """A frame not answering the request in flight: classify it."""
        r = frame.get("req")
        if r is None:
            if frame.get("type") != "model":  # a model switch is announced to everyone
                self.shared.violations["unattributed_frame"] += 1
        elif self.req_base <= r < self.next_req:
            self.shared.violations["late_frame"] += 1  # one of ours, after its terminal frame
        else:
            self.shared.violations["wrong_client"] += 1

    def _check_start(self, frame: dict, fields: dict) -> None:
        """The trace that started is of the prompt this client sent."""
        prompt = fields.get("prompt")
        text = "".join(self.vocab.get(str(i), "\0") for i in frame["tokens"])
        if prompt is not None and prompt not in text:
            self.shared.violations["wrong_content"] += 1

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.think_range))

    # ------------------------------------------------------------------ one session
    async def session(self, deadline: float) -> bool:
        """Trace, scrub, ablate, ask. False if it stopped early (an error or the deadline)."""
        rng = self.rng
        model = self.hello["model"]
        prompt = rng.choice(PROMPTS)
        generate = rng.randint(8, 16) if rng.random() < 0.5 else 0
        try:
            done = await self.request("trace", prompt=prompt, generate=generate)
            tid, tokens, n_prompt = done["trace_id"], done["tokens"], done["n_prompt"]
            owner = self.shared.trace_owner.setdefault(tid, self.index)
            if owner != self.index:
                self.shared.violations["trace_id_collision"] += 1
            n = len(tokens)
            steps: list[tuple[str, dict]] = []
            for position in (n_prompt - 1, rng.randrange(n)):  # as the page: grid, then hover
                steps += [("heads", {"position": position, "k": 0})]
                steps += [("heads_tokens", {"position": position, "k": 5})]
            for _ in range(3):
                layer = rng.randrange(model["n_lens_layers"])
                steps.append(("cell", {"layer": layer, "position": rng.randrange(n)}))
            steps.append(("pca", {"positions": sorted(rng.sample(range(n), min(3, n)))}))
            for type_, fields in steps:
                if time.perf_counter() >= deadline:
                    return False
                await self.think()
                kind = "heads" if type_ == "heads_tokens" else type_
                frame = await self.request(kind, label=type_, trace_id=tid, **fields)
                self._check_answer(frame, tid, fields)
            if time.perf_counter() >= deadline:
                return False
            await self.think()
            head = [rng.randrange(model["n_blocks"]), rng.randrange(model["n_heads"])]
            ablate = [{"kind": "ablate", "heads": [head]}]
            frame = await self.request("effect", prompt=prompt, interventions=ablate)
            if frame["ids"] != tokens[:n_prompt]:
                self.shared.violations["wrong_content"] += 1
            if time.perf_counter() >= deadline:
                return False
            await self.think()
            await self.ask(rng.choice(QUESTIONS), prompt)
        except RequestFailed:
            return False
        return True

    def _check_answer(self, frame: dict, trace_id: str, fields: dict) -> None:
        """An interaction's answer is about the trace and position this client asked for."""
        if frame.get("trace_id") != trace_id:
            self.shared.violations["wrong_trace_id"] += 1
        for key in ("position", "layer", "positions"):
            if key in fields and frame.get(key) != fields[key]:
                self.shared.violations["wrong_content"] += 1

    async def ask(self, question: str, prompt: str | None = None) -> dict:
        """A chat question about what the client is looking at."""
        return await self.request(
            "ask",
            question=question,
            context={"view": "lens", "prompt": prompt},
            retrieve_only=self.ask_mode == "retrieve",
        )


def overlapping(interactions: list[Record], types: tuple[str, ...], records: list[Record]) -> list:
    """The ``interactions`` sent while another client's request of one of ``types`` (among
    ``records``) was in flight: sent before it, not yet answered."""
    busy = [(r.t0, r.t1, r.client) for r in records if r.type in types]
    return [r for r in interactions if any(c != r.client and t0 < r.t0 < t1 for t0, t1, c in busy)]
