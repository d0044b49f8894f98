"""`benchmarks/run.py --quick` runs end to end, reports every contender in every section and draws
the chart next to its JSON report: once as installed here, once with every peer library hidden (what
CI sees when it installs only the dev extra), where the peers are listed as skipped, with the reason.

No timing is asserted (figures on a shared machine are noise); the structure is, and so are the
behaviours the benchmark proves: modelmix reuses one connection for sequential streams, and no
contender reaches beyond 127.0.0.1.
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
PEERS = (
    "openai",
    "litellm",
    "aisuite",
    "openai-async",
    "litellm-async",
    "pydantic-ai-async",
    "aisuite-async",
    "aiohttp-async",
    "modelmix-aiohttp-async",
    "openai-aiohttp-async",
)
PEER_MODULES = ("openai", "litellm", "pydantic_ai", "aisuite", "aiohttp")
HIDING_PEERS = """
import runpy, sys
for module in {modules!r}:
    sys.modules[module] = None  # find_spec() now says "not installed", and import fails
sys.path.insert(0, {benchmarks!r})
sys.argv = [{run!r}, *sys.argv[1:]]
runpy.run_path({run!r}, run_name="__main__")
"""


def _quick(output: Path, *, hide_peers: bool = False) -> str:
    """Run `run.py --quick`; what it printed."""
    command = [sys.executable, str(RUN)]
    if hide_peers:
        code = HIDING_PEERS.format(modules=PEER_MODULES, benchmarks=str(RUN.parent), run=str(RUN))
        command = [sys.executable, "-c", code]
    proc = subprocess.run(
        [*command, "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Targets (issue 12)" in proc.stdout  # the printed tables
    assert "Summary (issue 12's table" in proc.stdout
    return proc.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The JSON report's path and what the run printed."""
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    return output, _quick(output)


@pytest.fixture(scope="module")
def report(quick_run: tuple[Path, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(quick_run[0].read_text())
    return data


@pytest.fixture(scope="module")
def report_without_peers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("bench") / "no-peers.json"
    _quick(output, hide_peers=True)
    data: dict[str, Any] = json.loads(output.read_text())
    return output, data


def _check_chart(output: Path, report: dict[str, Any]) -> None:
    root = ET.parse(output.with_suffix(".svg")).getroot()  # well-formed XML
    assert root.tag == f"{SVG}svg"
    panels = {g.get("data-section") or "": g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"}
    assert list(panels) == [section for section in CHARTED if section in report]
    assert list(panels) == list(CHARTED)  # a quick run runs every section
    for section, panel in panels.items():
        bars = [rect for rect in panel.iter(f"{SVG}rect") if "bar" in (rect.get("class") or "").split()]
        # One bar per contender (per module, for imports; per contender and level, for concurrency).
        per_row = len(report["meta"]["plan"]["concurrency_levels"]) if section == "concurrency" else 1
        assert len(bars) == len(report[section]) * per_row, section
        assert any("bar-modelmix" in (bar.get("class") or "") for bar in bars), section


def test_the_chart_is_written_next_to_the_report_with_one_panel_per_section(
    quick_run: tuple[Path, str], report: dict[str, Any]
) -> None:
    assert f"chart: {quick_run[0].with_suffix('.svg')}" in quick_run[1]
    _check_chart(quick_run[0], report)


def test_every_section_and_contender_is_reported(report: dict[str, Any]) -> None:
    contenders = report["meta"]["contenders"]
    assert set(ALWAYS) <= set(contenders)
    assert report["meta"]["quick"] is True
    # Peers that are installed are measured; the rest are listed as skipped with the reason, never
    # silently lost.
    assert set(contenders) | set(report["skipped"]) >= set(PEERS)
    assert not set(contenders) & set(report["skipped"])
    assert all(isinstance(reason, str) and reason for reason in report["skipped"].values())
    info = report["meta"]["contender_info"]
    async_contenders = [name for name in contenders if info[name]["is_async"]]
    for section in SECTIONS:
        assert section in report, section
    for section in ("latency", "streaming", "connections", "memory"):
        assert list(report[section]) == contenders, section
    assert list(report["concurrency"]) == async_contenders
    levels = [str(level) for level in report["meta"]["plan"]["concurrency_levels"]]
    assert len(levels) == 2
    for name, row in report["concurrency"].items():
        assert list(row["levels"]) == levels, name
    assert set(report["import_time"]) == {info[name]["library"] for name in contenders}
    assert report["network_attempts"] == []


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
        for level, level_row in row["levels"].items():
            assert level_row["errors"] == 0, (name, level, level_row["error_samples"])
            assert level_row["connections_cold"] >= 1
            assert level_row["calls_per_s"] > 0
    for name, row in report["import_time"].items():
        assert row["importtime_ms"] > 0, name
    for name, row in report["memory"].items():
        assert row["tracemalloc_peak_mb"] > 0, name
        assert row["rss_growth_mb"] >= 0, name
        assert row["peak_rss_mb"] > 0, name


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


def test_without_the_peers_the_run_measures_modelmix_and_lists_every_peer_as_not_installed(
    report_without_peers: tuple[Path, dict[str, Any]],
) -> None:
    output, report = report_without_peers
    assert report["meta"]["contenders"] == list(ALWAYS)
    assert set(report["skipped"]) == set(PEERS)
    for name, reason in report["skipped"].items():
        assert reason.startswith("not installed: "), (name, reason)
    assert report["skipped"]["litellm"] == "not installed: litellm"
    assert report["skipped"]["modelmix-aiohttp-async"] == "not installed: aiohttp"
    for section in ("latency", "streaming", "connections", "memory"):
        assert list(report[section]) == list(ALWAYS), section
    assert set(report["import_time"]) == {"httpx", "modelmix"}
    _check_chart(output, report)


def test_when_aiohttp_is_installed_its_raw_client_runs_and_modelmix_on_it_runs_or_says_why_not(
    report: dict[str, Any],
) -> None:
    if "aiohttp-async" in report["skipped"]:
        pytest.skip("aiohttp is not installed")
    assert "aiohttp-async" in report["meta"]["contenders"]
    assert report["latency"]["aiohttp-async"]["p50_ratio"] == 1.0
    if "modelmix-aiohttp-async" in report["skipped"]:
        # Before the transport option exists, modelmix's own refusal is the reason given.
        assert "transport" in report["skipped"]["modelmix-aiohttp-async"]
    else:
        assert report["latency"]["modelmix-aiohttp-async"]["baseline"] == "aiohttp-async"
        assert report["connections"]["modelmix-aiohttp-async"]["connections"] == 1
