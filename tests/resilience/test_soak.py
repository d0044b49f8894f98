"""Soak: ≥10,000 requests through a three-model chain over the fault server, faults drawn at
random (seeded), 50 at a time. Run with ``pytest -m soak -s`` to see the figures."""

from __future__ import annotations

import collections
import gc
import logging
import random
import time
import tracemalloc
from collections.abc import Iterator

import anyio
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.resilience import BreakerConfig

from .conftest import CANARY, NoSleepClock, assert_pool_released, policy
from .faultserver import Fault, FaultServerProcess

pytestmark = pytest.mark.soak

REQUESTS = int(__import__("os").environ.get("SOAK_REQUESTS", "10000"))
CONCURRENCY = 50
SEED = 20261122
LABELS = ("s1", "s2", "s3")


FAULTS: list[tuple[Fault, float]] = [
    (Fault.ok(), 80),
    (Fault.error(500), 5),
    (Fault.error(503, headers={"retry-after-ms": "20"}), 3),
    (Fault.error(429, headers={"retry-after-ms": "10"}), 4),
    (Fault.error(504), 1),
    (Fault("reset_before_headers"), 4),
    (Fault("reset_after_chunks", chunks=0), 3),
    (Fault("reset_after_chunks", chunks=2), 2),
    (Fault("eof_no_terminator", chunks=0), 2),
    (Fault("eof_no_terminator", chunks=2), 1),
    (Fault("malformed_json", chunks=0), 2),
    (Fault("error_event", chunks=0), 2),
    (Fault("redirect"), 1),
]


@pytest.fixture(scope="module")
def soak_server() -> Iterator[FaultServerProcess]:
    faults, weights = [f for f, _ in FAULTS], [w for _, w in FAULTS]
    randomized = {label: (faults, weights, SEED + index) for index, label in enumerate(LABELS)}
    with FaultServerProcess(randomized) as server:  # its own process: the client keeps a core
        yield server


async def test_soak_three_model_chain(
    soak_server: FaultServerProcess, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # INFO records go only to the counting handler below: pytest's capture would keep 10,000
    # requests' lines in memory and they would dominate the memory figures.
    caplog.set_level(logging.INFO, logger="modelmix")
    modelmix_logger = logging.getLogger("modelmix")
    monkeypatch.setattr(modelmix_logger, "propagate", False)
    opened = collections.Counter[str]()

    class CountOpenings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("circuit ") and " open for " in record.getMessage():
                opened[record.getMessage().split(" ")[1]] += 1

    counter = CountOpenings(level=logging.INFO)
    modelmix_logger.addHandler(counter)
    server = soak_server
    clock = NoSleepClock()
    members = [
        mm.ResilientModel(
            OpenAIModel(label, api_key=CANARY, base_url=server.url(label)),
            policy=policy(ttft_timeout=10, idle_timeout=10),
            clock=clock,
        )
        for label in LABELS
    ]
    # The soak packs hours of traffic into minutes, and it is here to drive the breakers through
    # their states under load: at its 20 % fault rate the default thresholds would keep them
    # closed (see test_chaos.py), so these trip on 5 failures in a row or half of 10 calls, and
    # stay open 0.5 s × times opened (at most 5 s) instead of 10 s and 300 s.
    scaled = BreakerConfig(window=20, min_calls=10, consecutive_failures=5, open_base=0.5, open_cap=5.0)
    chain = mm.fallback(*members, clock=clock, min_attempt_time=0.05, deadline=60, breaker_config=scaled)
    picks = random.Random(SEED)
    use_stream = [picks.random() < 0.5 for _ in range(REQUESTS)]
    # Preallocated before tracing starts, so the memory figures show modelmix, not this bookkeeping.
    outcomes: list[str | None] = [None] * REQUESTS
    endings = [0] * REQUESTS
    pending = list(range(REQUESTS))

    async def one(request_id: int) -> None:
        try:
            if use_stream[request_id]:
                async with chain.astream("soak") as stream:
                    text = "".join([d async for d in stream.text_deltas()])
            else:
                text = (await chain.achat("soak")).text
            outcomes[request_id] = "ok" if text == "Hello" else f"WRONG:{text!r}"
        except mm.ModelMixError as exc:
            outcomes[request_id] = type(exc).__name__
        endings[request_id] += 1

    async def run(ids: Iterator[int]) -> None:
        # A fixed set of workers (not one task per request), so the memory figures are not the
        # event loop's task bookkeeping.
        async def worker() -> None:
            for request_id in ids:
                await one(request_id)

        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENCY):
                group.start_soon(worker)

    tracemalloc.start()
    started = time.monotonic()
    await run(iter(pending[:1000]))
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
    await run(iter(pending[1000:]))
    elapsed = time.monotonic() - started
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    modelmix_logger.removeHandler(counter)
    tally = collections.Counter(outcomes)
    print(f"\nsoak: {REQUESTS} requests, concurrency {CONCURRENCY}, {elapsed:.1f} s ({REQUESTS / elapsed:.0f} req/s)")
    stats = server.stats()
    print(f"soak: server saw {stats['seen']} HTTP requests; behaviours: {dict(sorted(stats['injected'].items()))}")
    print(f"soak: outcomes: {dict(tally)}; backoff waits computed: {clock.waits}")
    memory = f"after warm-up {baseline / 1e6:.2f} MB, at end {current / 1e6:.2f} MB, peak {peak / 1e6:.2f} MB"
    print(f"soak: traced memory {memory}")
    for name, breaker in chain.breakers.items():
        print(f"soak: breaker {name}: {breaker.snapshot(clock.now())}")
    print(f"soak: breaker openings logged: {opened}")

    assert None not in tally  # none lost
    assert set(endings) == {1}  # each ended exactly once: none duplicated
    assert not [k for k in tally if k is not None and k.startswith("WRONG")]
    # How many succeed depends on when breakers open (they do: ~20 % of attempts fail at random);
    # what must hold is that every request ended once, typed, and most got an answer.
    assert tally["ok"] > REQUESTS * 0.6
    assert set(tally) <= {"ok", "AllModelsFailedError", "StreamInterruptedError", "DeadlineExceededError"}
    assert current - baseline < 2e6  # flat: under ~200 bytes per request over 9,000 more requests
    assert_pool_released(chain)
    await chain.aclose()
