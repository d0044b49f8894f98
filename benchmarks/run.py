"""modelmix benchmarks: raw httpx vs modelmix vs peer SDKs, side by side, against one local mock
OpenAI-compatible server on 127.0.0.1 running in its own process.

    .venv/bin/python benchmarks/run.py            # full run (a few minutes); writes results/latest.json
                                                  # and its chart, results/latest.svg (chart.py)
    .venv/bin/python benchmarks/run.py --quick    # a smoke run of a few seconds

Sections: per-call latency (p50/p99), streaming throughput and time to first token, connection
reuse across sequential streams, concurrent async calls, import time, memory for a long stream.
Ratios are against raw httpx (sync contenders against ``httpx``, async ones against ``httpx-async``).
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

from bench_contenders import CONTENDERS, ContenderSpec, available
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
from chart import write_chart

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "latest.json"
SECTIONS = ("latency", "streaming", "connections", "concurrency", "import_time", "memory")

P50_TARGET = 1.05
"""Through `mm.model()` defaults, modelmix may add at most 5 % to raw httpx's p50 (issue 12)…"""
P99_TARGET = 1.2
"""…and 20 % to its p99;"""
STREAM_TARGET = 0.9
"""its streams must run at 0.9× raw httpx's chunk rate or better;"""
IMPORT_TARGET_MS = 80.0
"""and its import may cost at most 80 ms more than httpx's."""


@dataclass(frozen=True)
class Plan:
    latency_rounds: int
    latency_per_round: int
    latency_warmup: int
    stream_chunks: int
    stream_rounds: int
    reuse_streams: int
    reuse_chunks: int
    concurrent_calls: int
    concurrent_repeats: int
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
    concurrent_calls=200,
    concurrent_repeats=3,
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
    concurrent_calls=50,
    concurrent_repeats=1,
    import_runs=1,
    memory_chunks=200,
)


class MockServer:
    """`bench_server.py` in a child process."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "bench_server.py"), "--port", "0"],
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
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in ("httpx", "modelmix", "openai", "pydantic-ai-slim", "aisuite", "pydantic"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    latency = report.get("latency", {})
    for name in ("modelmix", "modelmix-async"):
        if name in latency:
            ratio = latency[name]["p50_ratio"]
            targets[f"{name} p50 <= {P50_TARGET:.2f}x httpx"] = {"value": ratio, "met": ratio <= P50_TARGET}
            ratio = latency[name]["p99_ratio"]
            targets[f"{name} p99 <= {P99_TARGET:.2f}x httpx"] = {"value": ratio, "met": ratio <= P99_TARGET}
    streaming = report.get("streaming", {})
    for name in ("modelmix", "modelmix-async"):
        if name in streaming:
            ratio = streaming[name]["throughput_ratio"]
            label = f"{name} streams >= {STREAM_TARGET:.1f}x httpx chunks/s"
            targets[label] = {"value": ratio, "met": ratio >= STREAM_TARGET}
    imports = report.get("import_time", {})
    if "modelmix" in imports and imports["modelmix"]["over_httpx_ms"] is not None:
        over = imports["modelmix"]["over_httpx_ms"]
        label = f"modelmix import <= httpx + {IMPORT_TARGET_MS:.0f} ms"
        targets[label] = {"value": over, "met": over <= IMPORT_TARGET_MS}
    connections = report.get("connections", {})
    for name in ("modelmix", "modelmix-async"):
        if name in connections:
            used = connections[name]["connections"]
            targets[f"{name} reuses 1 connection for sequential streams"] = {"value": used, "met": used == 1}
    return targets


# ----------------------------------------------------------------------------------- printing

_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "latency": [
        ("p50_us", "p50 µs"),
        ("p99_us", "p99 µs"),
        ("mean_us", "mean µs"),
        ("p50_ratio", "p50 ×"),
        ("p99_ratio", "p99 ×"),
        ("cpu_us", "CPU µs"),
        ("cpu_ratio", "CPU ×"),
    ],
    "streaming": [
        ("chunks_per_s", "chunks/s"),
        ("throughput_ratio", "× thrpt"),
        ("ttft_us", "TTFT µs"),
        ("ttft_ratio", "× TTFT"),
        ("stream_ms", "stream ms"),
        ("cpu_us_per_chunk", "CPU µs/chunk"),
        ("cpu_ratio", "CPU ×"),
    ],
    "connections": [("streams", "streams"), ("connections", "TCP conns"), ("reused", "reused")],
    "concurrency": [
        ("calls", "calls"),
        ("cold_ms", "cold ms"),
        ("warm_ms", "warm ms"),
        ("warm_ratio", "warm ×"),
        ("connections_cold", "conns"),
        ("errors", "errors"),
    ],
    "import_time": [("importtime_ms", "-X importtime ms"), ("wall_ms", "wall ms"), ("over_httpx_ms", "over httpx ms")],
    "memory": [("rss_growth_mb", "RSS growth MB"), ("tracemalloc_peak_mb", "tracemalloc peak MB"), ("stream_s", "s")],
}

_TITLES = {
    "latency": "Non-streamed call latency (ratios vs raw httpx of the same kind)",
    "streaming": "Streaming throughput and time to first token",
    "connections": "TCP connections for sequential fully-read streams (fresh client each)",
    "concurrency": "Concurrent async calls (one fresh client; cold = first batch, warm = median of the rest)",
    "import_time": "Import time (fresh interpreter, median)",
    "memory": "Memory while reading one long stream (fresh interpreter per contender; quick: shared)",
}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def format_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    meta = report["meta"]
    lines.append(
        f"modelmix benchmarks — {meta['date']} — Python {meta['python']} on {meta['cpus']} CPUs "
        f"(load {meta['load_before']} → {meta['load_after']}){' — QUICK' if meta['quick'] else ''}"
    )
    for section in SECTIONS:
        rows = report.get(section)
        if not rows:
            continue
        columns = _COLUMNS[section]
        table = [["", *(title for _, title in columns)]]
        table.extend([name, *(_cell(row.get(key)) for key, _ in columns)] for name, row in rows.items())
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines.append("")
        lines.append(_TITLES[section])
        for i, row in enumerate(table):
            cells = "  ".join(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
            lines.append(f"  {row[0].ljust(widths[0])}  {cells}")
            if i == 0:
                lines.append("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))
    if report.get("targets"):
        lines.append("")
        lines.append("Targets (issue 12)")
        for label, target in report["targets"].items():
            lines.append(f"  [{'met' if target['met'] else 'MISSED'}] {label}: {_cell(target['value'])}")
    if report.get("skipped"):
        lines.append("")
        lines.append("Skipped (not installed; pip install -e '.[bench]'): " + ", ".join(report["skipped"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ running


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
            bench, specs, calls=plan.concurrent_calls, repeats=plan.concurrent_repeats
        ),
        "import_time": lambda: measure_import_time(
            list(dict.fromkeys(spec.library for spec in specs)), runs=plan.import_runs, wall=not quick
        ),
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
    report["targets"] = _targets(report)
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

    by_name = {spec.name: spec for spec in CONTENDERS}
    if args.memory_worker:
        print(json.dumps(memory_worker(by_name[args.memory_worker], args.base_url, args.chunks)))
        return 0

    unknown = set(args.contenders or ()) - set(by_name)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {sorted(by_name)}")
    wanted = set(args.contenders or by_name) | {"httpx", "httpx-async"}
    specs = [spec for spec in CONTENDERS if spec.name in wanted and available(spec)]
    skipped = [spec.name for spec in CONTENDERS if spec.name in wanted and not available(spec)]

    sys.stderr.write(f"benchmarking {', '.join(spec.name for spec in specs)}\n")
    report = run(QUICK if args.quick else FULL, specs, args.only or SECTIONS, quick=args.quick)
    report["skipped"] = skipped
    print(format_report(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"wrote {args.output}\n")
    chart = write_chart(report, args.output.with_suffix(".svg"))
    print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
