"""What sharing state through Redis adds to a call: p50/p99 per call (µs), Redis round trips per
call, and how many of them the caller waits on, for a shared circuit breaker, a shared rate limit
and a shared budget, against an in-process model (so only modelmix's own work and the store are
measured). Starts its own redis-server on
127.0.0.1 unless MODELMIX_REDIS_URL is set.

    python benchmarks/redis_overhead.py
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable

import redis

import modelmix as mm
from modelmix.resilience import MemoryStore, RedisStore, registry
from modelmix.testing import FunctionModel

CALLS = 3000
mm.register_model_info("bench-model", mm.ModelInfo(context_window=8_000, input_per_mtok=1.0, output_per_mtok=2.0))


def _server() -> tuple[str, subprocess.Popen[bytes] | None]:
    url = os.environ.get("MODELMIX_REDIS_URL")
    if url:
        return url, None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return f"redis://127.0.0.1:{port}/0", process


def _commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    # Commands run inside a script are counted under their own names: only what a client sent counts.
    sent = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_ping", "cmdstat_script", "cmdstat_del")
    return sum(int(v["calls"]) for k, v in stats.items() if k in sent)


def _timed(call: Callable[[], object]) -> list[float]:
    for _ in range(200):
        call()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    url, process = _server()
    try:
        client = redis.Redis.from_url(url)
        model = FunctionModel(lambda messages, settings: "ok", name="bench-model")
        local = {
            "plain model": model,
            "circuit breaker (in-process)": mm.circuit_breaker(model),
            "rate limit (in-process)": mm.rate_limit(model, rpm=10**9, max_concurrency=10**6, store=MemoryStore()),
        }
        store = mm.shared_state(url, prefix="bench")
        assert isinstance(store, RedisStore)
        shared = {
            "circuit breaker (Redis)": mm.circuit_breaker(model),
            "rate limit rpm+concurrency (Redis)": mm.rate_limit(model, rpm=10**9, max_concurrency=10**6),
            "rate limit tpm (Redis)": mm.rate_limit(model, tpm=10**12, scope="bench-tpm"),
            "budget (Redis)": mm.budget(model, max_usd=10**6, scope="bench"),
        }
        base = statistics.median(_timed(lambda: model.chat("hi", max_tokens=5)))
        # Settlements go through `store.later` (a background thread): the caller waits on the rest.
        deferred = [0]
        later = store.later

        def counted(operation: Callable[[], object]) -> None:
            deferred[0] += 1
            later(operation)

        store.later = counted  # type: ignore[method-assign]
        print(
            f"{'configuration':40} {'p50 µs':>7} {'p99 µs':>7} {'added p50':>10} {'trips/call':>11} {'waited on':>10}"
        )
        for name, wrapped in {**local, **shared}.items():
            before, deferred[0] = _commands(client), 0
            times = _timed(lambda wrapped=wrapped: wrapped.chat("hi", max_tokens=5))  # type: ignore[misc]
            store.flush()
            trips = (_commands(client) - before) / (CALLS + 200)
            waited = trips - (deferred[0] / (CALLS + 200) if name.endswith("(Redis)") else 0)
            p50, p99 = statistics.median(times), statistics.quantiles(times, n=100)[98]
            print(
                f"{name:40} {p50 * 1e6:7.0f} {p99 * 1e6:7.0f} {(p50 - base) * 1e6:10.0f} {trips:11.2f} {waited:10.2f}"
            )
        mm.shared_state(None)
        registry.clear()
    finally:
        if process is not None:
            process.terminate()
            process.wait(5)


if __name__ == "__main__":
    main()
