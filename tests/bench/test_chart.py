"""`benchmarks/chart.py` draws whatever a report holds: one panel per charted section present,
one bar per contender present, nothing for what is missing. Structure only, no timings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from chart import CHARTED_SECTIONS, build_panels, main, render_svg, write_chart

SVG = "{http://www.w3.org/2000/svg}"


def _latency(p50: float, ratio: float, baseline: str) -> dict[str, Any]:
    return {"calls": 40, "p50_us": p50, "p99_us": p50 * 2, "p50_ratio": ratio, "baseline": baseline}


def _streaming(rate: int, ratio: float, baseline: str) -> dict[str, Any]:
    return {"chunks": 100, "chunks_per_s": rate, "throughput_ratio": ratio, "baseline": baseline}


def _memory(before: float, growth: float) -> dict[str, Any]:
    return {"chunks": 200, "rss_before_mb": before, "rss_growth_mb": growth, "process": "fresh"}


def small_report() -> dict[str, Any]:
    """Two sync and three async contenders (no openai at all), and no concurrency section."""
    return {
        "meta": {"date": "2026-12-01 03:00 UTC", "python": "3.11.7", "cpus": 2, "quick": True},
        "latency": {
            "httpx": _latency(1000.0, 1.0, "httpx"),
            "modelmix": _latency(1100.0, 1.1, "httpx"),
            "httpx-async": _latency(1500.0, 1.0, "httpx-async"),
            "modelmix-async": _latency(1650.0, 1.1, "httpx-async"),
            "pydantic-ai-async": _latency(4000.0, 2.667, "httpx-async"),
        },
        "streaming": {
            "httpx": _streaming(40000, 1.0, "httpx"),
            "modelmix": _streaming(20000, 0.5, "httpx"),
            "httpx-async": _streaming(30000, 1.0, "httpx-async"),
            "modelmix-async": _streaming(15000, 0.5, "httpx-async"),
            "pydantic-ai-async": _streaming(2500, 0.083, "httpx-async"),
        },
        "connections": {"httpx": {"streams": 5, "connections": 1, "requests": 5, "reused": True}},
        "import_time": {
            "httpx": {"importtime_ms": 80.0, "over_httpx_ms": 0.0},
            "modelmix": {"importtime_ms": 180.0, "over_httpx_ms": 100.0},
        },
        "memory": {
            "httpx": _memory(38.0, 0.3),
            "modelmix": _memory(48.6, 1.8),
            "httpx-async": _memory(38.7, 1.1),
            "modelmix-async": _memory(49.6, 2.2),
            "pydantic-ai-async": _memory(88.0, 2.8),
        },
    }


def _panels(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return {g.get("data-section") or "": g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"}


def _bars(panel: ET.Element) -> list[ET.Element]:
    return [rect for rect in panel.iter(f"{SVG}rect") if "bar" in (rect.get("class") or "").split()]


def _texts(panel: ET.Element) -> list[str]:
    return [text.text or "" for text in panel.iter(f"{SVG}text")]


def test_one_panel_per_charted_section_present_in_report_order() -> None:
    panels = _panels(render_svg(small_report()))
    # No concurrency section in the report, and the connections section is not charted.
    assert list(panels) == ["latency", "streaming", "import_time", "memory"]
    assert [panel.section for panel in build_panels(small_report())] == list(panels)


def test_missing_contenders_are_absent_and_present_ones_have_one_bar_each() -> None:
    panels = _panels(render_svg(small_report()))
    for section in ("latency", "streaming", "memory"):
        texts = _texts(panels[section])
        assert len(_bars(panels[section])) == 5, section
        for name in ("httpx", "modelmix", "httpx-async", "modelmix-async", "pydantic-ai-async"):
            assert name in texts, (section, name)
        assert not any(text.startswith("openai") for text in texts), section
        assert "sync, on httpx" in texts
        assert "async, on httpx" in texts
        assert not any("aiohttp" in text for text in texts), section
    assert len(_bars(panels["import_time"])) == 2


def test_modelmix_is_highlighted_and_the_figures_are_printed() -> None:
    panels = _panels(render_svg(small_report()))
    latency = panels["latency"]
    kinds = [(bar.get("class") or "").split()[-1] for bar in _bars(latency)]
    assert kinds == ["bar-baseline", "bar-modelmix", "bar-baseline", "bar-modelmix", "bar-peer"]
    texts = _texts(latency)
    assert "1,100 µs · 1.10× httpx" in texts
    assert "1,000 µs" in texts  # the baseline's own ratio (1.00×) says nothing and is left out
    assert "4,000 µs · 2.67× httpx" in texts  # the async ratio is to httpx's async client
    assert "20,000 chunks/s · 0.50× httpx" in _texts(panels["streaming"])
    assert "180 ms · +100 ms vs httpx" in _texts(panels["import_time"])
    assert "50.4 MB" in _texts(panels["memory"])  # peak RSS: before + growth
    modelmix_names = [t for t in latency.iter(f"{SVG}text") if t.text == "modelmix"]
    assert modelmix_names[0].get("font-weight") == "bold"


def test_concurrency_draws_every_level_the_report_has() -> None:
    report = small_report()
    report["concurrency"] = {
        # One level per row (what run.py writes today)...
        "httpx-async": {"calls": 50, "calls_per_s": 570, "errors": 0, "baseline": "httpx-async"},
        # ...or several levels in one row.
        "modelmix-async": {
            "levels": {
                "50": {"calls": 50, "calls_per_s": 630, "errors": 0},
                "200": {"calls": 200, "calls_per_s": 647, "errors": 3},
            }
        },
    }
    panel = _panels(render_svg(report))["concurrency"]
    texts = _texts(panel)
    assert texts.index("50 concurrent calls") < texts.index("200 concurrent calls")
    assert len(_bars(panel)) == 3
    assert "647 req/s · 3 failed" in texts


def aiohttp_report() -> dict[str, Any]:
    """The small report plus the aiohttp group: raw aiohttp and two clients on it."""
    report = small_report()
    report["latency"].update(
        {
            "aiohttp-async": _latency(200.0, 1.0, "aiohttp-async"),
            "modelmix-aiohttp-async": _latency(260.0, 1.3, "aiohttp-async"),
            "openai-aiohttp-async": _latency(900.0, 4.5, "aiohttp-async"),
        }
    )
    report["streaming"].update(
        {
            "aiohttp-async": _streaming(70000, 1.0, "aiohttp-async"),
            "modelmix-aiohttp-async": _streaming(56000, 0.8, "aiohttp-async"),
        }
    )
    report["memory"]["aiohttp-async"] = {**_memory(39.0, 0.5), "baseline": "aiohttp-async"}

    def levels(*rates: tuple[int, int, float | None]) -> dict[str, Any]:
        return {
            str(level): {"calls": level, "calls_per_s": rate, "rate_ratio": ratio, "errors": 0}
            for level, rate, ratio in rates
        }

    report["concurrency"] = {
        "httpx-async": {"levels": levels((50, 570, 1.0), (200, 318, 1.0)), "baseline": "httpx-async"},
        "modelmix-async": {"levels": levels((50, 630, 1.105), (200, 647, 2.035)), "baseline": "httpx-async"},
        "aiohttp-async": {"levels": levels((50, 7509, 1.0), (200, 6819, 1.0)), "baseline": "aiohttp-async"},
        "modelmix-aiohttp-async": {
            "levels": levels((50, 5600, 0.746), (200, 5000, 0.733)),
            "baseline": "aiohttp-async",
        },
    }
    return report


def _groups(panel: ET.Element) -> list[str]:
    """The group titles of a panel, top to bottom (bold grey text at the left margin)."""
    return [
        t.text or ""
        for t in panel.iter(f"{SVG}text")
        if t.get("x") == "20.0" and t.get("font-weight") == "bold" and t.get("font-size") == "12"
    ]


def test_clients_on_aiohttp_are_a_group_of_their_own_compared_with_raw_aiohttp() -> None:
    panels = _panels(render_svg(aiohttp_report()))
    latency = panels["latency"]
    assert _groups(latency) == ["sync, on httpx", "async, on httpx", "async, on aiohttp"]
    texts = _texts(latency)
    # Ratios within the aiohttp group are to raw aiohttp, which is drawn as a baseline.
    assert "260 µs · 1.30× aiohttp" in texts
    assert "900 µs · 4.50× aiohttp" in texts
    assert "200 µs" in texts
    kinds = {bar.find(f"{SVG}title").text.split(":")[0]: (bar.get("class") or "").split()[-1] for bar in _bars(latency)}  # type: ignore[union-attr]
    assert kinds["aiohttp-async"] == "bar-baseline"
    assert kinds["modelmix-aiohttp-async"] == "bar-modelmix"
    assert kinds["openai-aiohttp-async"] == "bar-peer"
    assert "56,000 chunks/s · 0.80× aiohttp" in _texts(panels["streaming"])
    assert _groups(panels["memory"]) == ["sync, on httpx", "async, on httpx", "async, on aiohttp"]


def test_concurrency_groups_each_level_by_transport() -> None:
    panel = _panels(render_svg(aiohttp_report()))["concurrency"]
    assert _groups(panel) == [
        "50 concurrent calls, on httpx",
        "50 concurrent calls, on aiohttp",
        "200 concurrent calls, on httpx",
        "200 concurrent calls, on aiohttp",
    ]
    texts = _texts(panel)
    assert "5,600 req/s · 0.75× aiohttp" in texts
    assert "647 req/s · 2.04× httpx" in texts
    assert len(_bars(panel)) == 8


def test_a_section_without_the_charted_figure_still_gets_its_panel() -> None:
    report = small_report()
    report["memory"] = {"httpx": {"chunks": 200, "tracemalloc_peak_mb": 0.7}}  # no RSS figures
    panel = _panels(render_svg(report))["memory"]
    assert _bars(panel) == []
    assert "no figures for this section in the report" in _texts(panel)


def test_names_are_escaped() -> None:
    report = {"latency": {"<b>&amp;</b>-async": _latency(10.0, 1.0, "x")}}
    panel = _panels(render_svg(report))["latency"]
    assert "<b>&amp;</b>-async" in _texts(panel)


def test_an_empty_report_is_still_a_valid_chart(tmp_path: Path) -> None:
    path = write_chart({}, tmp_path / "deep" / "empty.svg")
    assert _panels(path.read_text(encoding="utf-8")) == {}


def test_the_command_line_writes_next_to_the_report_or_where_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    report_path.write_text(json.dumps(small_report()), encoding="utf-8")
    assert main([str(report_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "report.svg")
    assert main([str(report_path), "-o", str(tmp_path / "img" / "bench.svg")]) == 0
    assert set(_panels((tmp_path / "img" / "bench.svg").read_text(encoding="utf-8"))) <= set(CHARTED_SECTIONS)


def test_a_figure_that_would_run_past_the_edge_is_drawn_inside_its_bar() -> None:
    report = aiohttp_report()
    # The longest bar of the panel, with a long label: no room to its right.
    report["streaming"]["modelmix-aiohttp-async"] = _streaming(116935, 0.99, "aiohttp-async")
    report["streaming"]["aiohttp-async"] = _streaming(118263, 1.0, "aiohttp-async")
    panel = _panels(render_svg(report))["streaming"]
    labels = {t.text: t for t in panel.iter(f"{SVG}text")}
    inside = labels["116,935 chunks/s · 0.99× aiohttp"]
    assert inside.get("text-anchor") == "end"
    assert inside.get("fill") == "#fff"
    outside = labels["20,000 chunks/s · 0.50× httpx"]
    assert outside.get("text-anchor") == "start"
    assert outside.get("stroke") == "#fff"  # the halo
