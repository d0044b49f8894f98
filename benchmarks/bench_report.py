"""Turning a benchmark report (the dict `run.py` writes as JSON) into what a person reads: issue 12's
goals checked against it, the one-row-per-client summary, and the per-section tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SECTIONS", "format_report", "summary_table", "targets"]

SECTIONS = ("latency", "streaming", "connections", "concurrency", "import_time", "memory")

P50_TARGET = 1.05
"""Through `mm.model()` defaults, modelmix may add at most 5 % to raw httpx's p50 (issue 12)…"""
P99_TARGET = 1.2
"""…and 20 % to its p99;"""
STREAM_TARGET = 0.9
"""its streams must run at 0.9× raw httpx's chunk rate or better;"""
IMPORT_TARGET_MS = 80.0
"""and its import may cost at most 80 ms more than httpx's."""

AIOHTTP_LEVEL = "50"
"""On the aiohttp transport, at 50 concurrent calls…"""
AIOHTTP_RATE_TARGET = 0.7
"""…modelmix completes at least 0.7× the calls per second of raw aiohttp;"""
AIOHTTP_STREAM_TARGET = 0.7
"""streams at 0.7× its chunk rate or better;"""
AIOHTTP_P50_TARGET = 1.5
"""and its p50 is at most 1.5× raw aiohttp's."""

_AIOHTTP_CLIENTS = (("modelmix-aiohttp-async", True), ("openai-aiohttp-async", False))
"""The clients on aiohttp whose ratios are printed: modelmix's are goals, the openai SDK's aiohttp
option is printed for comparison."""


# -------------------------------------------------------------------------------------- targets


def _target(value: float | None, met: bool | None) -> dict[str, Any]:
    return {"value": value, "met": met}


def _httpx_targets(report: Mapping[str, Any], out: dict[str, Any]) -> None:
    latency = report.get("latency", {})
    streaming = report.get("streaming", {})
    for name in ("modelmix", "modelmix-async"):
        if (ratio := latency.get(name, {}).get("p50_ratio")) is not None:
            out[f"{name} p50 <= {P50_TARGET:.2f}x httpx"] = _target(ratio, ratio <= P50_TARGET)
        if (ratio := latency.get(name, {}).get("p99_ratio")) is not None:
            out[f"{name} p99 <= {P99_TARGET:.2f}x httpx"] = _target(ratio, ratio <= P99_TARGET)
    for name in ("modelmix", "modelmix-async"):
        if (ratio := streaming.get(name, {}).get("throughput_ratio")) is not None:
            label = f"{name} streams >= {STREAM_TARGET:.1f}x httpx chunks/s"
            out[label] = _target(ratio, ratio >= STREAM_TARGET)
    over = report.get("import_time", {}).get("modelmix", {}).get("over_httpx_ms")
    if over is not None:
        out[f"modelmix import <= httpx + {IMPORT_TARGET_MS:.0f} ms"] = _target(over, over <= IMPORT_TARGET_MS)
    connections = report.get("connections", {})
    for name in ("modelmix", "modelmix-async"):
        if name in connections:
            used = connections[name]["connections"]
            out[f"{name} reuses 1 connection for sequential streams"] = _target(used, used == 1)


def _aiohttp_targets(report: Mapping[str, Any], out: dict[str, Any]) -> None:
    """modelmix on aiohttp against raw aiohttp (goals, met or missed), and the openai SDK's aiohttp
    option against the same baseline (for comparison: `met` is None)."""
    for name, is_goal in _AIOHTTP_CLIENTS:
        concurrency = report.get("concurrency", {}).get(name, {}).get("levels", {}).get(AIOHTTP_LEVEL, {})
        checks = (
            (f"C={AIOHTTP_LEVEL} req/s >=", AIOHTTP_RATE_TARGET, concurrency.get("rate_ratio"), True),
            (
                "streams >=",
                AIOHTTP_STREAM_TARGET,
                report.get("streaming", {}).get(name, {}).get("throughput_ratio"),
                True,
            ),
            ("p50 <=", AIOHTTP_P50_TARGET, report.get("latency", {}).get(name, {}).get("p50_ratio"), False),
        )
        for what, goal, ratio, higher_is_better in checks:
            if ratio is None:
                continue
            met = (ratio >= goal if higher_is_better else ratio <= goal) if is_goal else None
            out[f"{name} {what} {goal:.1f}x raw aiohttp"] = _target(ratio, met)


def targets(report: Mapping[str, Any]) -> dict[str, Any]:
    """Issue 12's goals that the report has figures for: {label: {"value", "met"}} (`met` is None
    for a figure printed for comparison only)."""
    out: dict[str, Any] = {}
    _httpx_targets(report, out)
    _aiohttp_targets(report, out)
    return out


# -------------------------------------------------------------------------------------- summary


def _figure(section: Mapping[str, Any], name: str, key: str) -> Any:
    return section.get(name, {}).get(key)


def summary_table(report: Mapping[str, Any]) -> list[list[str]]:
    """Issue 12's table, one row per contender: import ms (its library), p50 µs, stream chunks/s,
    CPU µs per chunk, warm req/s at each concurrency level, peak RSS MB. The first row is the
    header; a figure the run did not take is "-"."""
    info: Mapping[str, Any] = report.get("meta", {}).get("contender_info", {})
    concurrency = report.get("concurrency", {})
    levels = sorted({int(level) for row in concurrency.values() for level in row.get("levels", {})})
    header = [
        "client",
        "import ms",
        "p50 µs",
        "stream chunks/s",
        "CPU µs/chunk",
        *(f"C={level} req/s" for level in levels),
        "peak RSS MB",
    ]
    rows = [header]
    for name in report.get("meta", {}).get("contenders", []):
        library = info.get(name, {}).get("library", name)
        figures = [
            _figure(report.get("import_time", {}), library, "importtime_ms"),
            _figure(report.get("latency", {}), name, "p50_us"),
            _figure(report.get("streaming", {}), name, "chunks_per_s"),
            _figure(report.get("streaming", {}), name, "cpu_us_per_chunk"),
            *(concurrency.get(name, {}).get("levels", {}).get(str(level), {}).get("calls_per_s") for level in levels),
            _figure(report.get("memory", {}), name, "peak_rss_mb"),
        ]
        rows.append([name, *(_summary_cell(value) for value in figures)])
    return rows


def _summary_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) < 100:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _markdown(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append(
                "|"
                + "|".join("-" * (widths[0] + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
                + "|"
            )
    return lines


# ---------------------------------------------------------------------------------- the tables

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
        ("cold_ms", "cold ms"),
        ("warm_ms", "warm ms"),
        ("calls_per_s", "req/s"),
        ("rate_ratio", "req/s ×"),
        ("connections_cold", "conns"),
        ("errors", "errors"),
    ],
    "import_time": [("importtime_ms", "-X importtime ms"), ("wall_ms", "wall ms"), ("over_httpx_ms", "over httpx ms")],
    "memory": [
        ("peak_rss_mb", "peak RSS MB"),
        ("rss_growth_mb", "RSS growth MB"),
        ("tracemalloc_peak_mb", "tracemalloc peak MB"),
        ("stream_s", "s"),
    ],
}

_TITLES = {
    "latency": "Non-streamed call latency (ratios vs the raw transport of the same kind)",
    "streaming": "Streaming throughput and time to first token",
    "connections": "TCP connections for sequential fully-read streams (fresh client each)",
    "concurrency": "{level} concurrent async calls (fresh client; cold = its first batch, warm = median of the rest)",
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


def _table(title: str, columns: list[tuple[str, str]], rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    table = [["", *(heading for _, heading in columns)]]
    table.extend([name, *(_cell(row.get(key)) for key, _ in columns)] for name, row in rows.items())
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["", title]
    for i, row in enumerate(table):
        cells = "  ".join(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        lines.append(f"  {row[0].ljust(widths[0])}  {cells}")
        if i == 0:
            lines.append("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))
    return lines


def _section_tables(section: str, rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if section != "concurrency":
        return _table(_TITLES[section], _COLUMNS[section], rows)
    by_level: dict[int, dict[str, Mapping[str, Any]]] = {}
    for name, row in rows.items():
        for level, level_row in row.get("levels", {}).items():
            by_level.setdefault(int(level), {})[name] = level_row
    lines: list[str] = []
    for level, level_rows in sorted(by_level.items()):
        lines.extend(_table(_TITLES[section].format(level=level), _COLUMNS[section], level_rows))
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"modelmix benchmarks — {meta['date']} — Python {meta['python']} on {meta['cpus']} CPUs "
        f"(load {meta['load_before']} → {meta.get('load_after')}){' — QUICK' if meta['quick'] else ''}"
    ]
    for section in SECTIONS:
        if rows := report.get(section):
            lines.extend(_section_tables(section, rows))
    if len(summary := summary_table(report)) > 1:
        lines.extend(["", "Summary (issue 12's table; concurrency warm)", *_markdown(summary)])
    if report.get("targets"):
        lines.extend(["", "Targets (issue 12)"])
        for label, target in report["targets"].items():
            state = "info" if target["met"] is None else "met" if target["met"] else "MISSED"
            lines.append(f"  [{state}] {label}: {_cell(target['value'])}")
    if skipped := report.get("skipped"):
        lines.extend(["", "Skipped (pip install -e '.[bench]' installs the peers):"])
        lines.extend(f"  {name}: {reason}" for name, reason in skipped.items())
    return "\n".join(lines)
