"""Chaos: 2,000 calls through a three-endpoint chain whose endpoints fail 37 % of requests at
random (each is healthy 63 % of the time), with the default circuit-breaker settings.

An endpoint that answers most requests must stay in service: a breaker may open on a bad burst,
but its half-open probes have to let the endpoint back in, so nearly every call finds a healthy
member. Run with ``pytest -m soak -s`` to see the figures.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from collections.abc import Iterator

import anyio
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.resilience import EndpointRegistry

from .conftest import CANARY, NoSleepClock, policy
from .faultserver import Fault, FaultServerProcess

pytestmark = pytest.mark.soak

CALLS = int(os.environ.get("CHAOS_CALLS", "2000"))
CONCURRENCY = 20
SEED = 20261201
LABELS = ("c1", "c2", "c3")

# 37 % of requests misbehave, in the soak's proportions (server errors, rate limits, resets,
# broken streams, a redirect); the other 63 % are answered normally.
FAULTS: list[tuple[Fault, float]] = [
    (Fault.ok(), 63),
    (Fault.error(500), 7),
    (Fault.error(503, headers={"retry-after-ms": "20"}), 4),
    (Fault.error(429, headers={"retry-after-ms": "10"}), 5),
    (Fault.error(504), 1),
    (Fault("reset_before_headers"), 5),
    (Fault("reset_after_chunks", chunks=0), 4),
    (Fault("reset_after_chunks", chunks=2), 2),
    (Fault("eof_no_terminator", chunks=0), 3),
    (Fault("eof_no_terminator", chunks=2), 1),
    (Fault("malformed_json", chunks=0), 2),
    (Fault("error_event", chunks=0), 2),
    (Fault("redirect"), 1),
]


@pytest.fixture(scope="module")
def chaos_server() -> Iterator[FaultServerProcess]:
    faults, weights = [f for f, _ in FAULTS], [w for _, w in FAULTS]
    randomized = {label: (faults, weights, SEED + index) for index, label in enumerate(LABELS)}
    with FaultServerProcess(randomized) as server:  # its own process: the client keeps a core
        yield server


async def test_chaos_breakers_let_recovering_endpoints_back(
    chaos_server: FaultServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelmix")  # 2,000 calls' debug lines would dominate the run
    clock = NoSleepClock()
    endpoints = EndpointRegistry()  # default breaker settings, nothing shared with other tests
    members = [
        mm.ResilientModel(
            OpenAIModel(label, api_key=CANARY, base_url=chaos_server.url(label)),
            policy=policy(ttft_timeout=10, idle_timeout=10),
            clock=clock,
            endpoints=endpoints,
        )
        for label in LABELS
    ]
    chain = mm.fallback(*members, clock=clock, min_attempt_time=0.05, deadline=60, endpoints=endpoints)
    breakers = list(chain.breakers.values())
    outcomes = collections.Counter[str]()
    skipped = collections.Counter[str]()  # calls on which a member's breaker refused it
    calls = iter(range(CALLS))

    def tally(attempts: list[mm.Attempt]) -> None:
        for attempt in attempts:
            if attempt.error == "CircuitOpenError":
                skipped[attempt.model] += 1

    async def one(call_no: int) -> None:
        try:
            if call_no % 2:
                async with chain.astream("chaos") as stream:
                    text = "".join([d async for d in stream.text_deltas()])
                tally(stream.response.attempts)
            else:
                response = await chain.achat("chaos")
                text = response.text
                tally(response.attempts)
            outcomes["ok" if text == "Hello" else "wrong"] += 1
        except mm.ModelMixError as exc:
            outcomes[type(exc).__name__] += 1
            tally(exc.attempts)

    async def worker() -> None:
        for call_no in calls:
            await one(call_no)

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(worker)
    elapsed = time.monotonic() - started
    await chain.aclose()

    stats = chaos_server.stats()
    success = outcomes["ok"] / CALLS
    print(f"\nchaos: {CALLS} calls, concurrency {CONCURRENCY}, {elapsed:.1f} s")
    print(f"chaos: server saw {stats['seen']} requests; behaviours: {dict(sorted(stats['injected'].items()))}")
    print(f"chaos: outcomes: {dict(outcomes)}")
    for label, breaker in zip(LABELS, breakers, strict=True):
        share = skipped[label] / CALLS
        print(f"chaos: {label}: skipped by its breaker on {share:.0%} of calls; {breaker.snapshot(clock.now())}")
    print(f"chaos: success rate {success:.1%}")

    assert sum(outcomes.values()) == CALLS
    assert outcomes["wrong"] == 0
    # Without retries (a 37 % failure rate spends the retry budget) a chat fails when all three
    # members fail (5 %), and a stream also when one breaks after its first token: ~93 % at best.
    assert success >= 0.85
    for label in LABELS:
        # 429 cooldowns skip a member briefly; a breaker stuck open would skip it on most calls.
        assert skipped[label] / CALLS < 0.3, f"{label} was kept out of the chain"
