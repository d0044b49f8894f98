"""The measurements. Each takes the contenders and returns plain dicts (ready for JSON).

Timing rules: every contender is warmed up first (connection open, lazy imports done); latency and
streaming samples are taken in interleaved rounds (each round runs every contender, in a rotated
order) so a slow moment on this shared machine lands on all contenders instead of one.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench_base import AsyncContender, SyncContender, stream_model
from bench_contenders import ContenderSpec
from bench_server import COMPLETION_TEXT, stream_text

__all__ = [
    "Bench",
    "measure_concurrency",
    "measure_connections",
    "measure_import_time",
    "measure_latency",
    "measure_memory",
    "measure_streaming",
    "memory_worker",
    "percentile",
]

T = TypeVar("T")
Contender = SyncContender | AsyncContender


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


class BenchmarkError(RuntimeError):
    """A contender answered wrongly (its figures would be meaningless)."""


@dataclass
class Bench:
    """The server address and one long-lived event loop for the async contenders."""

    base_url: str
    server_url: str
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def make(self, spec: ContenderSpec) -> Contender:
        """A fresh client. Async ones are built inside the running loop, as an application builds
        them (aiohttp binds a session to the loop it is made on)."""
        if spec.is_async:
            return self.run(_build_in_loop(spec, self.base_url))
        return spec.factory(self.base_url)

    def close(self, contender: Contender) -> None:
        if isinstance(contender, AsyncContender):
            self.run(contender.close())
        else:
            contender.close()

    def stats(self, *, reset: bool = False) -> dict[str, int]:
        request = urllib.request.Request(
            f"{self.server_url}/stats/reset" if reset else f"{self.server_url}/stats",
            method="POST" if reset else "GET",
            data=b"" if reset else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            stats: dict[str, int] = json.loads(response.read())
        return stats


async def _build_in_loop(spec: ContenderSpec, base_url: str) -> Contender:
    return spec.factory(base_url)


def _ratio(value: float, base: float | None) -> float | None:
    """value / base, or None when there is no baseline figure (its contender did not run)."""
    return round(value / base, 3) if base else None


def _add_ratios(results: dict[str, dict[str, Any]], ratios: dict[str, str]) -> None:
    """For each row, {ratio key: figure / the same figure of the row's baseline}."""
    for row in results.values():
        base = results.get(row["baseline"], {})
        for ratio_key, figure in ratios.items():
            row[ratio_key] = _ratio(row[figure], base.get(figure))


def _check(name: str, got: str, expected: str) -> None:
    if got != expected:
        raise BenchmarkError(f"{name} returned the wrong text ({len(got)} chars, expected {len(expected)})")


# ----------------------------------------------------------------------------------- latency


def _sync_calls(contender: SyncContender, n: int) -> list[float]:
    durations: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        started = clock()
        contender.chat()
        durations.append((clock() - started) / 1000)
    return durations


async def _async_calls(contender: AsyncContender, n: int) -> list[float]:
    durations: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        started = clock()
        await contender.chat()
        durations.append((clock() - started) / 1000)
    return durations


def _calls(bench: Bench, contender: Contender, n: int) -> tuple[list[float], float]:
    """Per-call wall times (µs), and the client process's CPU time per call (µs): the server runs
    in another process, so this is the client's own work, and it is far less disturbed than wall
    time by other load on the machine."""
    cpu = time.process_time()
    if isinstance(contender, AsyncContender):
        durations = bench.run(_async_calls(contender, n))
    else:
        durations = _sync_calls(contender, n)
    return durations, (time.process_time() - cpu) / n * 1e6


def measure_latency(
    bench: Bench, specs: Sequence[ContenderSpec], *, rounds: int, per_round: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Per-call latency of a non-streamed chat call, in microseconds."""
    contenders = {spec.name: bench.make(spec) for spec in specs}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for name, contender in contenders.items():
            text = bench.run(contender.chat()) if isinstance(contender, AsyncContender) else contender.chat()
            _check(name, text, COMPLETION_TEXT)
            _calls(bench, contender, warmup)
        names = list(contenders)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                durations, cpu_per_call = _calls(bench, contenders[name], per_round)
                samples[name].extend(durations)
                cpu[name].append(cpu_per_call)
    finally:
        for contender in contenders.values():
            bench.close(contender)
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        values = samples[spec.name]
        results[spec.name] = {
            "calls": len(values),
            "p50_us": round(statistics.median(values), 1),
            "p90_us": round(percentile(values, 90), 1),
            "p99_us": round(percentile(values, 99), 1),
            "mean_us": round(statistics.fmean(values), 1),
            "cpu_us": round(statistics.median(cpu[spec.name]), 1),
            "baseline": spec.baseline,
        }
    _add_ratios(results, {"p50_ratio": "p50_us", "p99_ratio": "p99_us", "cpu_ratio": "cpu_us"})
    return results


# --------------------------------------------------------------------------------- streaming


def _sync_stream(contender: SyncContender, model: str) -> tuple[float, float, list[str]]:
    pieces: list[str] = []
    first = 0.0
    started = time.perf_counter()
    for delta in contender.stream(model):
        if not pieces:
            first = time.perf_counter()
        pieces.append(delta)
    ended = time.perf_counter()
    return first - started, ended - started, pieces


async def _async_stream(contender: AsyncContender, model: str) -> tuple[float, float, list[str]]:
    pieces: list[str] = []
    first = 0.0
    started = time.perf_counter()
    async for delta in contender.stream(model):
        if not pieces:
            first = time.perf_counter()
        pieces.append(delta)
    ended = time.perf_counter()
    return first - started, ended - started, pieces


def _one_stream(bench: Bench, contender: Contender, model: str) -> tuple[float, float, list[str]]:
    """(time to first delta, whole stream, the deltas), in seconds."""
    if isinstance(contender, AsyncContender):
        return bench.run(_async_stream(contender, model))
    return _sync_stream(contender, model)


def _one_stream_cpu(bench: Bench, contender: Contender, model: str) -> tuple[float, float, list[str], float]:
    cpu = time.process_time()
    first, whole, pieces = _one_stream(bench, contender, model)
    return first, whole, pieces, time.process_time() - cpu


def measure_streaming(
    bench: Bench, specs: Sequence[ContenderSpec], *, chunks: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """Chunks per second and time to first token for a stream of `chunks` small text deltas."""
    model = stream_model(chunks)
    expected = stream_text(chunks)
    contenders = {spec.name: bench.make(spec) for spec in specs}
    ttft: dict[str, list[float]] = {name: [] for name in contenders}
    total: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for name, contender in contenders.items():
            _, _, pieces = _one_stream(bench, contender, model)  # warm-up, and a correctness check
            _check(name, "".join(pieces), expected)
            if len(pieces) != chunks:
                raise BenchmarkError(f"{name} yielded {len(pieces)} deltas, expected {chunks}")
        names = list(contenders)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                first, whole, pieces, cpu_s = _one_stream_cpu(bench, contenders[name], model)
                _check(name, "".join(pieces), expected)
                ttft[name].append(first)
                total[name].append(whole)
                cpu[name].append(cpu_s)
    finally:
        for contender in contenders.values():
            bench.close(contender)
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        seconds = statistics.median(total[spec.name])
        results[spec.name] = {
            "chunks": chunks,
            "streams": len(total[spec.name]),
            "chunks_per_s": round(chunks / seconds),
            "stream_ms": round(seconds * 1000, 2),
            "ttft_us": round(statistics.median(ttft[spec.name]) * 1e6, 1),
            "cpu_us_per_chunk": round(statistics.median(cpu[spec.name]) / chunks * 1e6, 2),
            "baseline": spec.baseline,
        }
    _add_ratios(results, {"throughput_ratio": "chunks_per_s", "ttft_ratio": "ttft_us", "cpu_ratio": "cpu_us_per_chunk"})
    return results


# ------------------------------------------------------------------------------- connections


def measure_connections(
    bench: Bench, specs: Sequence[ContenderSpec], *, streams: int, chunks: int
) -> dict[str, dict[str, Any]]:
    """TCP connections the server accepted for `streams` sequential, fully read streams (one fresh
    client per contender)."""
    model = stream_model(chunks)
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        contender = bench.make(spec)
        try:
            bench.stats(reset=True)
            for _ in range(streams):
                _one_stream(bench, contender, model)
            stats = bench.stats()
        finally:
            bench.close(contender)
        results[spec.name] = {
            "streams": streams,
            "connections": stats["chat_connections"],
            "requests": stats["requests"],
            "reused": stats["chat_connections"] == 1,
        }
    return results


# ------------------------------------------------------------------------------- concurrency


async def _concurrent_calls(
    contender: AsyncContender, concurrency: int, per_worker: int
) -> tuple[float, int, list[str]]:
    """`concurrency` workers, each making `per_worker` calls one after the other: `concurrency`
    calls in flight the whole time (with one call per worker, a burst). Returns the elapsed
    seconds, how many calls failed or answered wrongly, and a few of the errors."""
    outcomes: list[str | BaseException] = []

    async def worker() -> None:
        for _ in range(per_worker):
            try:
                outcomes.append(await contender.chat())
            except Exception as error:  # counted, and the worker goes on, like a server's handler
                outcomes.append(error)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    errors = [f"{type(o).__name__}: {o}"[:200] for o in outcomes if isinstance(o, BaseException)]
    wrong = sum(1 for o in outcomes if isinstance(o, str) and o != COMPLETION_TEXT)
    return elapsed, len(errors) + wrong, errors[:3]


@dataclass
class _LevelSamples:
    """What the batches of one contender at one concurrency level gave."""

    cold: list[float]
    warm: list[float]
    errors: int = 0
    error_samples: tuple[str, ...] = ()
    connections_cold: int = 0
    connections_total: int = 0


def _concurrency_round(
    bench: Bench, spec: ContenderSpec, level: int, per_worker: int, warm_batches: int, into: _LevelSamples
) -> None:
    """A fresh client: one cold batch (it opens the connections), then `warm_batches` warm ones."""
    contender = bench.make(spec)
    assert isinstance(contender, AsyncContender)
    try:
        bench.stats(reset=True)
        for batch in range(1 + warm_batches):
            elapsed, failed, samples = bench.run(_concurrent_calls(contender, level, per_worker))
            (into.cold if batch == 0 else into.warm).append(elapsed)
            if batch == 0:
                into.connections_cold = max(into.connections_cold, bench.stats()["chat_connections"])
            into.errors += failed
            into.error_samples = into.error_samples or tuple(samples)
        into.connections_total = max(into.connections_total, bench.stats()["chat_connections"])
    finally:
        bench.close(contender)


def measure_concurrency(
    bench: Bench,
    specs: Sequence[ContenderSpec],
    *,
    levels: Sequence[int],
    per_worker: int,
    rounds: int,
    warm_batches: int,
) -> dict[str, dict[str, Any]]:
    """Concurrent non-streamed calls on an async client, at each level in `levels` (calls in flight
    at once): a batch is `level` workers making `per_worker` calls each, back to back, so a batch
    lasts long enough to time even for the fastest client. Each round builds a fresh client per
    contender and level: its first batch opens the connections (cold), the next `warm_batches`
    reuse them (warm). Rounds are interleaved (every
    contender and level in each round, in rotated order) like the latency samples, and the figures
    are medians over all rounds' batches.

    Returns {contender: {"levels": {"<level>": row}, "baseline": …}}; a row's ratios are to its
    baseline's row at the same level."""
    async_specs = [spec for spec in specs if spec.is_async]
    samples = {(spec.name, level): _LevelSamples([], []) for spec in async_specs for level in levels}
    for round_no in range(rounds):
        shift = round_no % len(async_specs) if async_specs else 0
        for level in levels:
            for spec in async_specs[shift:] + async_specs[:shift]:
                _concurrency_round(bench, spec, level, per_worker, warm_batches, samples[spec.name, level])
    results: dict[str, dict[str, Any]] = {}
    for spec in async_specs:
        per_level: dict[str, dict[str, Any]] = {}
        for level in levels:
            got = samples[spec.name, level]
            cold_s = statistics.median(got.cold)
            warm_s = statistics.median(got.warm) if got.warm else cold_s
            calls = level * per_worker
            per_level[str(level)] = {
                "concurrency": level,
                "calls": calls,
                "batches": len(got.cold) + len(got.warm),
                "cold_ms": round(cold_s * 1000, 1),
                "warm_ms": round(warm_s * 1000, 1),
                "calls_per_s": round(calls / warm_s),
                "errors": got.errors,
                "error_samples": list(got.error_samples),
                "connections_cold": got.connections_cold,
                "connections_total": got.connections_total,
            }
        results[spec.name] = {"levels": per_level, "baseline": spec.baseline}
    for row in results.values():
        base = results.get(row["baseline"], {}).get("levels", {})
        for level, level_row in row["levels"].items():
            base_row = base.get(level, {})
            level_row["rate_ratio"] = _ratio(level_row["calls_per_s"], base_row.get("calls_per_s"))
            level_row["warm_ratio"] = _ratio(level_row["warm_ms"], base_row.get("warm_ms"))
    return results


# ------------------------------------------------------------------------------- import time


def _importtime_us(module: str) -> int:
    """Cumulative import time of `module` as `python -X importtime` reports it."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    # The largest cumulative figure is the top-level import: some packages (litellm) import their
    # own name again from inside, which prints a second, tiny line for it.
    figures = [
        int(parts[1])
        for line in proc.stderr.splitlines()
        if len(parts := line.split("|")) == 3 and parts[2].strip() == module
    ]
    if not figures:
        raise BenchmarkError(f"python -X importtime printed no line for {module}")
    return max(figures)


def _wall_ms(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_clean_env())
    return (time.perf_counter() - started) * 1000


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHONWARNINGS"):
        env.pop(name, None)
    return env


def measure_import_time(modules: Sequence[str], *, runs: int, wall: bool = True) -> dict[str, dict[str, Any]]:
    """Median over `runs` fresh interpreters of `-X importtime`'s cumulative figure for each module,
    and (with `wall`) of the wall time of ``python -c "import X"`` minus that of ``python -c "pass"``.
    Runs are interleaved across modules so load from other processes spreads over all of them."""
    reported: dict[str, list[int]] = {module: [] for module in modules}
    walls: dict[str, list[float]] = {module: [] for module in modules}
    startup: list[float] = []
    if wall:
        for module in modules:  # compile the .pyc files first
            _wall_ms(f"import {module}")
    for _ in range(runs):
        if wall:
            startup.append(_wall_ms("pass"))
        for module in modules:
            reported[module].append(_importtime_us(module))
            if wall:
                walls[module].append(_wall_ms(f"import {module}"))
    base_ms = statistics.median(startup) if startup else 0.0
    results: dict[str, dict[str, Any]] = {}
    for module in modules:
        results[module] = {
            "importtime_ms": round(statistics.median(reported[module]) / 1000, 1),
            "wall_ms": round(statistics.median(walls[module]) - base_ms, 1) if wall else None,
            "runs": runs,
        }
    base = results.get("httpx")
    for row in results.values():
        row["over_httpx_ms"] = round(row["importtime_ms"] - base["importtime_ms"], 1) if base else None
    return results


# ------------------------------------------------------------------------------------ memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchmarkError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS. ru_maxrss is no
    # use here: a child started by fork+exec inherits its parent's figure.
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def memory_worker(spec: ContenderSpec, base_url: str, chunks: int) -> dict[str, Any]:
    """The body of ``run.py --memory-worker``: `stream_memory` in a fresh interpreter."""
    loop = asyncio.new_event_loop()
    try:
        return stream_memory(Bench(base_url=base_url, server_url="", loop=loop), spec, chunks)
    finally:
        loop.close()


def stream_memory(bench: Bench, spec: ContenderSpec, chunks: int) -> dict[str, Any]:
    """Peak RSS growth and tracemalloc peak while reading one stream of `chunks` deltas (the text is
    collected, as an application would)."""
    contender = bench.make(spec)
    model = stream_model(chunks)
    expected = stream_text(chunks)
    try:
        _one_stream(bench, contender, stream_model(10))  # imports, connection
        gc.collect()
        _reset_peak_rss()
        before = _status_kb("VmRSS") * 1024
        _, seconds, pieces = _one_stream(bench, contender, model)
        peak_rss = _status_kb("VmHWM") * 1024
        _check(spec.name, "".join(pieces), expected)
        del pieces
        gc.collect()
        tracemalloc.start()
        _one_stream(bench, contender, model)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        bench.close(contender)
    return {
        "chunks": chunks,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_growth_mb": round(max(0, peak_rss - before) / 2**20, 2),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 2),
        "stream_s": round(seconds, 3),
        "baseline": spec.baseline,
    }


def measure_memory(
    bench: Bench, specs: Sequence[ContenderSpec], *, chunks: int, runner: Path | None
) -> dict[str, dict[str, Any]]:
    """One fresh interpreter per contender (`runner --memory-worker`), so nothing is shared; they run
    two at a time (memory figures don't depend on timing). With no `runner` (quick runs), in this
    process instead: faster, but RSS growth may hide in memory earlier contenders freed."""
    results: dict[str, dict[str, Any]] = {}
    if runner is None:
        # Every peer is loaded in this process by now, and each full collection would walk all of
        # their objects (a quarter of a second with LiteLLM loaded); freezing them keeps the
        # collections the measurement makes short.
        gc.freeze()
        try:
            return {spec.name: {**stream_memory(bench, spec, chunks), "process": "shared"} for spec in specs}
        finally:
            gc.unfreeze()
    base_url = bench.base_url
    worker = [sys.executable, str(runner), "--memory-worker"]
    pending = list(specs)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = [
            (
                spec,
                subprocess.Popen(
                    [*worker, spec.name, "--base-url", base_url, "--chunks", str(chunks)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_clean_env(),
                ),
            )
            for spec in batch
        ]
        for spec, proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise BenchmarkError(f"memory worker for {spec.name} failed:\n{err[-2000:]}")
            results[spec.name] = {**json.loads(out.strip().splitlines()[-1]), "process": "fresh"}
    return results


def timed(label: str, action: Callable[[], T]) -> T:
    """Run one benchmark section, saying on stderr how long it took."""
    started = time.perf_counter()
    sys.stderr.write(f"  {label}...")
    sys.stderr.flush()
    result = action()
    sys.stderr.write(f" {time.perf_counter() - started:.1f}s\n")
    return result
