"""Draw a benchmark report (the JSON `run.py` writes) as one self-contained SVG chart.

    .venv/bin/python benchmarks/chart.py                                  # results/latest.json -> results/latest.svg
    .venv/bin/python benchmarks/chart.py report.json -o docs/img/benchmark.svg

One panel per charted section the report has: per-call latency, streaming rate, concurrency,
import time and memory. Contenders a report lacks are simply absent. The SVG is written by hand
(no plotting library): horizontal bars, the figure printed at the end of each bar, modelmix's
bars in the accent colour, the raw transports in dark grey and the other clients in light grey.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["CHARTED_SECTIONS", "Bar", "Group", "Panel", "build_panels", "main", "render_svg", "write_chart"]

HERE = Path(__file__).resolve().parent
DEFAULT_REPORT = HERE / "results" / "latest.json"

CHARTED_SECTIONS = ("latency", "streaming", "concurrency", "import_time", "memory")
"""The sections drawn, in panel order (the connections section is a yes/no figure, left to the table)."""

RAW_TRANSPORTS = frozenset({"httpx", "aiohttp"})
"""Contenders (and imported modules) that are a raw transport, the baseline the others are compared to."""

COLOURS = {"modelmix": "#3f51b5", "baseline": "#546e7a", "peer": "#b0bec5"}
LEGEND = (("modelmix", "modelmix"), ("baseline", "raw transport (baseline)"), ("peer", "other clients"))
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

# Geometry, in px. Names are right-aligned against NAME_RIGHT; bars start at PLOT_LEFT; the longest
# bar stops at PLOT_LEFT + BAR_SPAN, leaving room for its printed figure up to WIDTH.
WIDTH = 880
NAME_RIGHT = 190
PLOT_LEFT = 200
BAR_SPAN = 470
BAR_HEIGHT = 14
ROW_HEIGHT = 22
GROUP_HEADER = 20
PANEL_GAP = 20


@dataclass(frozen=True)
class Bar:
    name: str
    value: float
    label: str
    kind: str
    """"modelmix", "baseline" or "peer": picks the colour."""


@dataclass(frozen=True)
class Group:
    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Panel:
    section: str
    title: str
    subtitle: str
    axis: str
    groups: tuple[Group, ...]


# ------------------------------------------------------------------------------ report -> panels


def _kind(name: str) -> str:
    if name.startswith("modelmix"):
        return "modelmix"
    return "baseline" if name.removesuffix("-async") in RAW_TRANSPORTS else "peer"


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _ratio(name: str, row: Mapping[str, Any], key: str) -> str:
    """ " · 1.11× httpx", or nothing for the baseline itself."""
    ratio = _number(row, key)
    baseline = _baseline_of(name, row)
    return "" if ratio is None or name == baseline else f" · {ratio:.2f}× {baseline.removesuffix('-async')}"


def _group_title(baseline: str) -> str:
    """ "sync, on httpx", "async, on aiohttp": the contenders compared with one raw transport."""
    transport = baseline.removesuffix("-async")
    return f"{'async' if baseline.endswith('-async') else 'sync'}, on {transport}"


def _baseline_of(name: str, row: Mapping[str, Any]) -> str:
    """The row's baseline; reports older than the aiohttp contenders have none in some sections,
    where the name's ``-async`` suffix tells sync from async (all of them on httpx)."""
    baseline = row.get("baseline")
    return baseline if isinstance(baseline, str) else ("httpx-async" if name.endswith("-async") else "httpx")


def _by_baseline(
    rows: Mapping[str, Mapping[str, Any]],
    bar: Callable[[str, Mapping[str, Any]], Bar | None],
    title: Callable[[str], str] = _group_title,
) -> tuple[Group, ...]:
    """One group per baseline (sync on httpx, async on httpx, async on aiohttp), in the order the
    report first names them; within a group, report order."""
    grouped: dict[str, list[Bar]] = {}
    for name, row in rows.items():
        if (drawn := bar(name, row)) is not None:
            grouped.setdefault(_baseline_of(name, row), []).append(drawn)
    return tuple(Group(title(baseline), tuple(bars)) for baseline, bars in grouped.items())


def _first(rows: Mapping[str, Mapping[str, Any]], key: str) -> Any:
    return next((row[key] for row in rows.values() if key in row), None)


def _latency(rows: Mapping[str, Mapping[str, Any]]) -> Panel:
    def bar(name: str, row: Mapping[str, Any]) -> Bar | None:
        p50 = _number(row, "p50_us")
        return None if p50 is None else Bar(name, p50, f"{p50:,.0f} µs{_ratio(name, row, 'p50_ratio')}", _kind(name))

    calls = _first(rows, "calls")
    return Panel(
        "latency",
        "Per-call latency, p50 (lower is better)",
        "one non-streamed chat call"
        + (f", median of {calls:,} calls" if isinstance(calls, int) else "")
        + "; ratios are to the raw transport of the same group",
        "µs per call (median)",
        _by_baseline(rows, bar),
    )


def _streaming(rows: Mapping[str, Mapping[str, Any]]) -> Panel:
    def bar(name: str, row: Mapping[str, Any]) -> Bar | None:
        rate = _number(row, "chunks_per_s")
        label = f"{rate:,.0f} chunks/s{_ratio(name, row, 'throughput_ratio')}" if rate is not None else ""
        return None if rate is None else Bar(name, rate, label, _kind(name))

    chunks = _first(rows, "chunks")
    return Panel(
        "streaming",
        "Streaming rate (higher is better)",
        (f"a {chunks:,}-chunk stream read to its end" if isinstance(chunks, int) else "a stream read to its end")
        + "; ratios are to the raw transport of the same group",
        "text chunks per second (median stream)",
        _by_baseline(rows, bar),
    )


def _concurrency_levels(rows: Mapping[str, Mapping[str, Any]]) -> dict[int, dict[str, Mapping[str, Any]]]:
    """{concurrency level: {contender: row}}. A contender's row is either one level (its
    ``concurrency``, else its ``calls``, is the level) or holds several under ``levels``
    ({level: row}); a level's row takes the contender's baseline when it has none of its own."""
    levels: dict[int, dict[str, Mapping[str, Any]]] = {}
    for name, row in rows.items():
        nested = row.get("levels")
        pairs: Iterable[tuple[Any, Any]] = (
            nested.items() if isinstance(nested, Mapping) else [(row.get("concurrency", row.get("calls")), row)]
        )
        for level, level_row in pairs:
            if isinstance(level_row, Mapping) and str(level).isdigit():
                levels.setdefault(int(level), {})[name] = {"baseline": _baseline_of(name, row), **level_row}
    return dict(sorted(levels.items()))


def _concurrency(rows: Mapping[str, Mapping[str, Any]]) -> Panel:
    def bar(name: str, row: Mapping[str, Any]) -> Bar | None:
        rate = _number(row, "calls_per_s")
        if rate is None:
            return None
        errors = row.get("errors")
        failed = f" · {errors:,} failed" if isinstance(errors, int) and errors else ""
        return Bar(name, rate, f"{rate:,.0f} req/s{_ratio(name, row, 'rate_ratio')}{failed}", _kind(name))

    groups: list[Group] = []
    for level, level_rows in _concurrency_levels(rows).items():
        transports = {_baseline_of(name, row).removesuffix("-async") for name, row in level_rows.items()}

        def title(baseline: str, level: int = level, several: bool = len(transports) > 1) -> str:
            on = f", on {baseline.removesuffix('-async')}" if several else ""
            return f"{level:,} concurrent calls{on}"

        groups.extend(_by_baseline(level_rows, bar, title))
    return Panel(
        "concurrency",
        "Concurrent async calls (higher is better)",
        "non-streamed calls kept in flight on one client, connections open; ratios to the raw transport of the group",
        "completed calls per second",
        tuple(groups),
    )


def _import_time(rows: Mapping[str, Mapping[str, Any]]) -> Panel:
    def bar(name: str, row: Mapping[str, Any]) -> Bar | None:
        ms = _number(row, "importtime_ms")
        if ms is None:
            return None
        over = _number(row, "over_httpx_ms")
        extra = f" · {over:+,.0f} ms vs httpx" if over is not None and name != "httpx" else ""
        return Bar(name, ms, f"{ms:,.0f} ms{extra}", _kind(name))

    bars = tuple(b for name, row in rows.items() if (b := bar(name, row)))
    return Panel(
        "import_time",
        "Import time (lower is better)",
        "import <module> in a fresh interpreter (python -X importtime, median of the runs)",
        "milliseconds",
        (Group("", bars),) if bars else (),
    )


def _memory(rows: Mapping[str, Mapping[str, Any]]) -> Panel:
    def bar(name: str, row: Mapping[str, Any]) -> Bar | None:
        peak = _number(row, "peak_rss_mb")
        if peak is None:
            before, growth = _number(row, "rss_before_mb"), _number(row, "rss_growth_mb")
            peak = None if before is None or growth is None else before + growth
        return None if peak is None else Bar(name, peak, f"{peak:,.1f} MB", _kind(name))

    chunks = _first(rows, "chunks")
    shared = any(row.get("process") == "shared" for row in rows.values())
    return Panel(
        "memory",
        "Memory, peak RSS (lower is better)",
        (f"while reading one {chunks:,}-chunk stream" if isinstance(chunks, int) else "while reading one long stream")
        + ("; quick run: one shared process, not comparable" if shared else "; a fresh interpreter each"),
        "peak resident memory, MB",
        _by_baseline(rows, bar),
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Mapping[str, Any]]], Panel]] = {
    "latency": _latency,
    "streaming": _streaming,
    "concurrency": _concurrency,
    "import_time": _import_time,
    "memory": _memory,
}


def build_panels(report: Mapping[str, Any]) -> list[Panel]:
    """One panel for each charted section present in the report (even if none of its rows has the
    figure drawn: the panel then says so)."""
    return [_BUILDERS[section](report[section]) for section in CHARTED_SECTIONS if report.get(section)]


# ------------------------------------------------------------------------------------ drawing


def _ticks(top: float) -> tuple[float, list[float]]:
    """A round axis end at or above `top` and the 3-6 evenly spaced ticks up to it."""
    if top <= 0:
        return 1.0, [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(top))
    step = next(s * magnitude for s in (0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10) if top / (s * magnitude) <= 5)
    end = math.ceil(top / step - 1e-9) * step
    return end, [i * step for i in range(round(end / step) + 1)]


def _tick_label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def _text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "start", **style: str) -> str:
    extra = "".join(f" {key.replace('_', '-')}={quoteattr(value)}" for key, value in style.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def _panel_height(panel: Panel) -> int:
    rows = sum(len(group.bars) for group in panel.groups)
    headers = sum(1 for group in panel.groups if group.title)
    body = rows * ROW_HEIGHT + headers * GROUP_HEADER if rows else ROW_HEIGHT
    return 52 + body + 44


LABEL_CHAR_WIDTH = 7.2
"""Roughly how wide one character of a 12 px label is (bold digits and letters), to tell whether a
label fits to the right of its bar."""


def _bar_label(bar: Bar, length: float, baseline_y: float, weight: str) -> str:
    """The figure at the end of a bar: after it, with a white halo that keeps it legible where it
    crosses a grid line; or, when it would run past the panel's edge, inside the bar's end."""
    outside_x = PLOT_LEFT + length + 6
    if outside_x + len(bar.label) * LABEL_CHAR_WIDTH <= WIDTH - 12:
        return _text(
            outside_x, baseline_y, bar.label, font_weight=weight, stroke="#fff", stroke_width="3", paint_order="stroke"
        )
    ink = "#263238" if bar.kind == "peer" else "#fff"  # the peers' bars are light
    return _text(PLOT_LEFT + length - 6, baseline_y, bar.label, anchor="end", font_weight=weight, fill=ink)


def _draw_panel(panel: Panel, top: int) -> list[str]:
    height = _panel_height(panel)
    out = [
        f'<g class="panel" data-section={quoteattr(panel.section)} transform="translate(0,{top})">',
        f'<rect x="8" y="0" width="{WIDTH - 16}" height="{height}" rx="6" fill="#ffffff" stroke="#cfd8dc"/>',
        _text(20, 24, panel.title, size=16, font_weight="bold"),
        _text(20, 42, panel.subtitle, size=12, fill="#607d8b"),
    ]
    bars = [bar for group in panel.groups for bar in group.bars]
    end, ticks = _ticks(max((bar.value for bar in bars), default=0.0))
    plot_top, axis_y = 52, height - 40
    # Grid first, so the bars and their figures are drawn over it.
    for tick in ticks:
        x = PLOT_LEFT + tick / end * BAR_SPAN
        out.append(f'<line x1="{x:.1f}" y1="{plot_top}" x2="{x:.1f}" y2="{axis_y}" stroke="#eceff1"/>')
        out.append(_text(x, axis_y + 14, _tick_label(tick), size=11, anchor="middle", fill="#607d8b"))
    out.append(f'<line x1="{PLOT_LEFT}" y1="{axis_y}" x2="{PLOT_LEFT + BAR_SPAN}" y2="{axis_y}" stroke="#90a4ae"/>')
    out.append(_text(PLOT_LEFT + BAR_SPAN / 2, axis_y + 32, panel.axis, size=12, anchor="middle", fill="#455a64"))
    y = plot_top
    if not bars:
        out.append(_text(PLOT_LEFT, y + 15, "no figures for this section in the report", fill="#607d8b"))
    for group in panel.groups:
        if group.title:
            out.append(_text(20, y + 14, group.title, size=12, font_weight="bold", fill="#455a64"))
            y += GROUP_HEADER
        for bar in group.bars:
            length = max(1.0, bar.value / end * BAR_SPAN)
            weight = "bold" if bar.kind == "modelmix" else "normal"
            out.append(_text(NAME_RIGHT, y + 15, bar.name, anchor="end", font_weight=weight))
            out.append(
                f'<rect class="bar bar-{bar.kind}" x="{PLOT_LEFT}" y="{y + 4}" width="{length:.1f}" '
                f'height="{BAR_HEIGHT}" fill="{COLOURS[bar.kind]}"><title>{escape(bar.name)}: '
                f"{escape(bar.label)}</title></rect>"
            )
            out.append(_bar_label(bar, length, y + 15, weight))
            y += ROW_HEIGHT
    out.append("</g>")
    return out


def _subtitle(meta: Mapping[str, Any]) -> str:
    parts = [str(meta[key]) for key in ("date",) if meta.get(key)]
    if meta.get("python"):
        parts.append(f"Python {meta['python']}")
    if meta.get("cpus"):
        parts.append(f"{meta['cpus']} CPUs")
    if meta.get("quick"):
        parts.append("QUICK smoke run: figures are noise")
    return " · ".join(parts) + (" · " if parts else "") + "mock OpenAI server on 127.0.0.1"


def render_svg(report: Mapping[str, Any]) -> str:
    """The whole chart as an SVG document."""
    panels = build_panels(report)
    body: list[str] = []
    top = 86
    for panel in panels:
        body.extend(_draw_panel(panel, top))
        top += _panel_height(panel) + PANEL_GAP
    legend: list[str] = []
    x = 20.0
    for kind, label in LEGEND:
        legend.append(f'<rect x="{x:.1f}" y="58" width="12" height="12" fill="{COLOURS[kind]}"/>')
        legend.append(_text(x + 18, 69, label, fill="#455a64"))
        x += 30 + 7 * len(label)
    title = "modelmix benchmarks: modelmix against raw transports and other clients"
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{top}" viewBox="0 0 {WIDTH} {top}" '
        f'role="img" aria-labelledby="chart-title" font-family="{FONT}" fill="#263238">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<rect width="{WIDTH}" height="{top}" fill="#fafafa"/>',
        _text(20, 28, title, size=18, font_weight="bold"),
        _text(20, 48, _subtitle(report.get("meta", {})), size=12, fill="#607d8b"),
    ]
    return "\n".join([*head, *legend, *body, "</svg>"]) + "\n"


def write_chart(report: Mapping[str, Any], path: Path) -> Path:
    """Render `report` to `path` (parent directories created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(report), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw a benchmarks/run.py JSON report as one SVG chart")
    parser.add_argument("report", nargs="?", type=Path, default=DEFAULT_REPORT, help=f"default {DEFAULT_REPORT}")
    parser.add_argument("-o", "--output", type=Path, help="the SVG to write (default: the report's path, .svg)")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    print(write_chart(report, args.output or args.report.with_suffix(".svg")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
