"""modelmix benchmarks: raw httpx and raw aiohttp vs modelmix (on both) vs peer SDKs, side by side,
against one local mock OpenAI-compatible server on 127.0.0.1 running in its own process.

    .venv/bin/python benchmarks/run.py            # full run (a few minutes); writes results/latest.json
                                                  # and its chart, results/latest.svg (chart.py)
    .venv/bin/python benchmarks/run.py --quick    # a smoke run of a few seconds

Sections: per-call latency (p50/p99), streaming throughput and time to first token, connection
reuse across sequential streams, concurrent async calls (at two levels), import time, memory for a
long stream. Ratios are against the raw transport underneath: sync contenders against ``httpx``,
async ones against ``httpx-async`` or, on aiohttp, ``aiohttp-async``.
See benchmarks/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_base import forbid_network, keep_peers_local
from bench_contenders import CONTENDERS, ContenderSpec, baselines_of, unavailable
from bench_measure import (
    Bench,
    measure_concurrency,
    measure_connections,
    measure_import_time,
    measure_latency,
    measure_memory,
    measure_streaming,
    memory_worker,
    timed,
)
from bench_report import SECTIONS, format_report, targets
from chart import write_chart

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "latest.json"


@dataclass(frozen=True)
class Plan:
    latency_rounds: int
    latency_per_round: int
    latency_warmup: int
    stream_chunks: int
    stream_rounds: int
    reuse_streams: int
    reuse_chunks: int
    concurrency_levels: tuple[int, ...]
    concurrency_calls_per_worker: int
    concurrency_rounds: int
    concurrency_warm_batches: int
    import_runs: int
    memory_chunks: int


FULL = Plan(
    latency_rounds=20,
    latency_per_round=50,
    latency_warmup=50,
    stream_chunks=2000,
    stream_rounds=10,
    reuse_streams=20,
    reuse_chunks=50,
    concurrency_levels=(50, 200),
    concurrency_calls_per_worker=3,
    concurrency_rounds=3,
    concurrency_warm_batches=2,
    import_runs=7,
    memory_chunks=10000,
)
QUICK = Plan(
    latency_rounds=2,
    latency_per_round=20,
    latency_warmup=5,
    stream_chunks=100,
    stream_rounds=2,
    reuse_streams=5,
    reuse_chunks=20,
    concurrency_levels=(20, 50),
    concurrency_calls_per_worker=1,
    concurrency_rounds=1,
    concurrency_warm_batches=1,
    import_runs=1,
    memory_chunks=200,
)


class MockServer:
    """`bench_server.py` in a child process."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "bench_server.py"), "--port", "0", "--exit-with-stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the mock server did not start (it printed {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.base_url = f"{self.url}/v1"

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in (
        "httpx",
        "aiohttp",
        "httpx-aiohttp",
        "modelmix",
        "openai",
        "litellm",
        "pydantic-ai-slim",
        "aisuite",
        "pydantic",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


# ------------------------------------------------------------------------------------ running


def _modules(specs: Sequence[ContenderSpec]) -> list[str]:
    """The libraries to time the import of: the raw transports first, then the clients."""
    baselines = [spec.library for spec in specs if spec.name == spec.baseline]
    return list(dict.fromkeys([*baselines, *(spec.library for spec in specs)]))


def run(plan: Plan, specs: Sequence[ContenderSpec], sections: Sequence[str], *, quick: bool) -> dict[str, Any]:
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_before": round(os.getloadavg()[0], 2),
            "quick": quick,
            "plan": plan.__dict__,
            "versions": _versions(),
            "contenders": [spec.name for spec in specs],
            "contender_info": {
                spec.name: {
                    "library": spec.library,
                    "is_async": spec.is_async,
                    "baseline": spec.baseline,
                    "transport": spec.transport,
                }
                for spec in specs
            },
        }
    }
    server = MockServer()
    loop = asyncio.new_event_loop()
    bench = Bench(base_url=server.base_url, server_url=server.url, loop=loop)
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "latency": lambda: measure_latency(
            bench, specs, rounds=plan.latency_rounds, per_round=plan.latency_per_round, warmup=plan.latency_warmup
        ),
        "streaming": lambda: measure_streaming(bench, specs, chunks=plan.stream_chunks, rounds=plan.stream_rounds),
        "connections": lambda: measure_connections(bench, specs, streams=plan.reuse_streams, chunks=plan.reuse_chunks),
        "concurrency": lambda: measure_concurrency(
            bench,
            specs,
            levels=plan.concurrency_levels,
            per_worker=plan.concurrency_calls_per_worker,
            rounds=plan.concurrency_rounds,
            warm_batches=plan.concurrency_warm_batches,
        ),
        "import_time": lambda: measure_import_time(_modules(specs), runs=plan.import_runs, wall=not quick),
        "memory": lambda: measure_memory(
            bench, specs, chunks=plan.memory_chunks, runner=None if quick else Path(__file__).resolve()
        ),
    }
    try:
        for section in sections:
            report[section] = timed(section, steps[section])
    finally:
        loop.close()
        server.stop()
    report["meta"]["load_after"] = round(os.getloadavg()[0], 2)
    report["targets"] = targets(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="modelmix benchmarks (see benchmarks/README.md)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (figures are noisy)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON report (default {DEFAULT_OUTPUT})")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--contenders", nargs="+", help="run only these contenders (baselines are always kept)")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--chunks", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    keep_peers_local()  # before any peer is imported, here or in the workers this process starts

    by_name = {spec.name: spec for spec in CONTENDERS}
    if args.memory_worker:
        print(json.dumps(memory_worker(by_name[args.memory_worker], args.base_url, args.chunks)))
        return 0

    unknown = set(args.contenders or ()) - set(by_name)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {sorted(by_name)}")
    wanted = set(args.contenders or by_name)
    wanted |= baselines_of([by_name[name] for name in wanted])
    skipped = {spec.name: reason for spec in CONTENDERS if spec.name in wanted and (reason := unavailable(spec))}
    specs = [spec for spec in CONTENDERS if spec.name in wanted and spec.name not in skipped]
    # A contender whose baseline can't run has nothing to be compared with.
    for spec in list(specs):
        if spec.baseline in skipped:
            skipped[spec.name] = f"its baseline {spec.baseline} is skipped"
            specs.remove(spec)

    # Quick runs (CI's smoke) check that no contender reaches beyond 127.0.0.1 (bench_base).
    attempts = forbid_network() if args.quick else None
    sys.stderr.write(f"benchmarking {', '.join(spec.name for spec in specs)}\n")
    report = run(QUICK if args.quick else FULL, specs, args.only or SECTIONS, quick=args.quick)
    report["skipped"] = skipped
    report["network_attempts"] = attempts
    print(format_report(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"wrote {args.output}\n")
    chart = write_chart(report, args.output.with_suffix(".svg"))
    print(f"chart: {chart}")
    if attempts:
        sys.stderr.write("contenders tried to leave 127.0.0.1:\n  " + "\n  ".join(attempts) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
