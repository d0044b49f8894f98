"""`benchmarks/run.py --quick` runs end to end, reports every contender in every section and draws
the chart next to its JSON report.

No timing is asserted (figures on a shared machine are noise); the structure is, and so is the
one behaviour the benchmark proves: modelmix reuses one connection for sequential streams.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"
SECTIONS = ("latency", "streaming", "connections", "concurrency", "import_time", "memory")
CHARTED = ("latency", "streaming", "concurrency", "import_time", "memory")
SVG = "{http://www.w3.org/2000/svg}"
ALWAYS = ("httpx", "modelmix", "modelmix-bare", "httpx-async", "modelmix-async", "modelmix-bare-async")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The JSON report's path and what the run printed."""
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Targets (issue 12)" in proc.stdout  # the printed table
    return output, proc.stdout


@pytest.fixture(scope="module")
def report(quick_run: tuple[Path, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(quick_run[0].read_text())
    return data


def test_the_chart_is_written_next_to_the_report_with_one_panel_per_section(
    quick_run: tuple[Path, str], report: dict[str, Any]
) -> None:
    chart = quick_run[0].with_suffix(".svg")
    assert f"chart: {chart}" in quick_run[1]
    root = ET.parse(chart).getroot()  # well-formed XML
    assert root.tag == f"{SVG}svg"
    panels = {g.get("data-section") or "": g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"}
    assert list(panels) == [section for section in CHARTED if section in report]
    assert list(panels) == list(CHARTED)  # a quick run runs every section
    for section, panel in panels.items():
        bars = [rect for rect in panel.iter(f"{SVG}rect") if "bar" in (rect.get("class") or "").split()]
        assert len(bars) == len(report[section]), section  # one bar per contender (module, for imports)
        assert any("bar-modelmix" in (bar.get("class") or "") for bar in bars), section


def test_every_section_and_contender_is_reported(report: dict[str, Any]) -> None:
    contenders = report["meta"]["contenders"]
    assert set(ALWAYS) <= set(contenders)
    assert report["meta"]["quick"] is True
    # Peers that are installed are measured; the rest are listed as skipped, never silently lost.
    assert set(contenders) | set(report["skipped"]) >= {"openai", "openai-async", "pydantic-ai-async"}
    async_contenders = [name for name in contenders if name.endswith("-async")]
    for section in SECTIONS:
        assert section in report, section
    for section in ("latency", "streaming", "connections", "memory"):
        assert list(report[section]) == contenders, section
    assert list(report["concurrency"]) == async_contenders
    assert "httpx" in report["import_time"]
    assert "modelmix" in report["import_time"]


def test_figures_are_sane(report: dict[str, Any]) -> None:
    for name, row in report["latency"].items():
        assert row["calls"] > 0
        assert 0 < row["p50_us"] <= row["p99_us"], name
        assert row["p50_ratio"] > 0
    assert report["latency"]["httpx"]["p50_ratio"] == 1.0
    assert report["latency"]["httpx-async"]["p50_ratio"] == 1.0
    for name, row in report["streaming"].items():
        assert row["chunks_per_s"] > 0, name
        assert 0 < row["ttft_us"] <= row["stream_ms"] * 1000, name
    for name, row in report["concurrency"].items():
        assert row["errors"] == 0, (name, row["error_samples"])
        assert row["connections_cold"] >= 1
    for name, row in report["import_time"].items():
        assert row["importtime_ms"] > 0, name
    for name, row in report["memory"].items():
        assert row["tracemalloc_peak_mb"] > 0, name
        assert row["rss_growth_mb"] >= 0, name


def test_modelmix_reuses_one_connection_for_sequential_streams(report: dict[str, Any]) -> None:
    for name in ("modelmix", "modelmix-async", "modelmix-bare", "modelmix-bare-async"):
        row = report["connections"][name]
        assert row["streams"] > 1
        assert row["requests"] == row["streams"]
        assert row["connections"] == 1, name
    # The raw-httpx baseline reads its streams to the end too, so it also reuses.
    assert report["connections"]["httpx"]["connections"] == 1
    targets = report["targets"]
    assert targets["modelmix reuses 1 connection for sequential streams"]["met"] is True
