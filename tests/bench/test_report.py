"""What `run.py` prints from a report: issue 12's goals (modelmix on httpx against raw httpx, modelmix
on aiohttp against raw aiohttp, the openai SDK's aiohttp option for comparison), the
one-row-per-client summary, and why a contender was skipped. Plus the guard that keeps a quick run
on 127.0.0.1. Hand-made reports; no server, no timings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bench_contenders import CONTENDERS, unavailable
from bench_report import format_report, summary_table, targets

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _level(rate: int, ratio: float | None) -> dict[str, Any]:
    return {"calls_per_s": rate, "rate_ratio": ratio, "errors": 0}


def report() -> dict[str, Any]:
    return {
        "meta": {
            "date": "2026-12-01 05:00 UTC",
            "python": "3.11.7",
            "cpus": 2,
            "load_before": 0.5,
            "load_after": 0.7,
            "quick": False,
            "contenders": ["httpx", "modelmix", "aiohttp-async", "modelmix-aiohttp-async", "openai-aiohttp-async"],
            "contender_info": {
                "httpx": {"library": "httpx"},
                "modelmix": {"library": "modelmix"},
                "aiohttp-async": {"library": "aiohttp"},
                "modelmix-aiohttp-async": {"library": "modelmix"},
                "openai-aiohttp-async": {"library": "openai"},
            },
        },
        "latency": {
            "httpx": {"p50_us": 800.0, "p50_ratio": 1.0, "p99_ratio": 1.0},
            "modelmix": {"p50_us": 830.0, "p50_ratio": 1.04, "p99_ratio": 1.3},
            "aiohttp-async": {"p50_us": 190.0, "p50_ratio": 1.0, "p99_ratio": 1.0},
            "modelmix-aiohttp-async": {"p50_us": 300.0, "p50_ratio": 1.58, "p99_ratio": 1.2},
            "openai-aiohttp-async": {"p50_us": 950.0, "p50_ratio": 5.0, "p99_ratio": 3.0},
        },
        "streaming": {
            "httpx": {"chunks_per_s": 45000, "cpu_us_per_chunk": 21.0, "throughput_ratio": 1.0},
            "modelmix": {"chunks_per_s": 42000, "cpu_us_per_chunk": 23.5, "throughput_ratio": 0.933},
            "modelmix-aiohttp-async": {"chunks_per_s": 52000, "cpu_us_per_chunk": 15.0, "throughput_ratio": 0.72},
        },
        "concurrency": {
            "aiohttp-async": {"levels": {"50": _level(7500, 1.0), "200": _level(6800, 1.0)}},
            "modelmix-aiohttp-async": {"levels": {"50": _level(5400, 0.72), "200": _level(5000, 0.735)}},
            "openai-aiohttp-async": {"levels": {"50": _level(500, 0.067)}},
        },
        "import_time": {
            "httpx": {"importtime_ms": 85.0, "over_httpx_ms": 0.0},
            "modelmix": {"importtime_ms": 160.0, "over_httpx_ms": 75.0},
        },
        "memory": {"httpx": {"peak_rss_mb": 38.2}, "modelmix": {"peak_rss_mb": 54.0}},
        "skipped": {"litellm": "not installed: litellm"},
    }


def test_goals_for_httpx_and_for_the_aiohttp_transport_are_checked() -> None:
    got = {label: (target["value"], target["met"]) for label, target in targets(report()).items()}
    assert got["modelmix p50 <= 1.05x httpx"] == (1.04, True)
    assert got["modelmix p99 <= 1.20x httpx"] == (1.3, False)
    assert got["modelmix streams >= 0.9x httpx chunks/s"] == (0.933, True)
    assert got["modelmix import <= httpx + 80 ms"] == (75.0, True)
    assert got["modelmix-aiohttp-async C=50 req/s >= 0.7x raw aiohttp"] == (0.72, True)
    assert got["modelmix-aiohttp-async streams >= 0.7x raw aiohttp"] == (0.72, True)
    assert got["modelmix-aiohttp-async p50 <= 1.5x raw aiohttp"] == (1.58, False)
    # The openai SDK's aiohttp option is printed for comparison, neither met nor missed.
    assert got["openai-aiohttp-async C=50 req/s >= 0.7x raw aiohttp"] == (0.067, None)
    assert got["openai-aiohttp-async p50 <= 1.5x raw aiohttp"] == (5.0, None)
    # No figure, no line (it has no streaming row).
    assert not any(label.startswith("openai-aiohttp-async streams") for label in got)


def test_the_summary_has_one_row_per_contender_and_a_column_per_concurrency_level() -> None:
    rows = summary_table(report())
    assert rows[0] == [
        "client",
        "import ms",
        "p50 µs",
        "stream chunks/s",
        "CPU µs/chunk",
        "C=50 req/s",
        "C=200 req/s",
        "peak RSS MB",
    ]
    by_name = {row[0]: row[1:] for row in rows[1:]}
    assert list(by_name) == report()["meta"]["contenders"]
    assert by_name["httpx"] == ["85.0", "800", "45,000", "21.0", "-", "-", "38.2"]
    # modelmix on aiohttp: modelmix's import time, its own figures elsewhere.
    assert by_name["modelmix-aiohttp-async"] == ["160", "300", "52,000", "15.0", "5,400", "5,000", "-"]
    assert by_name["openai-aiohttp-async"][4:6] == ["500", "-"]


def test_the_printed_report_has_the_summary_the_targets_and_the_skip_reasons() -> None:
    data = report()
    data["targets"] = targets(data)
    text = format_report(data)
    assert "| modelmix-aiohttp-async |" in text
    assert "[met] modelmix-aiohttp-async C=50 req/s >= 0.7x raw aiohttp: 0.720" in text
    assert "[MISSED] modelmix-aiohttp-async p50 <= 1.5x raw aiohttp: 1.580" in text
    assert "[info] openai-aiohttp-async C=50 req/s >= 0.7x raw aiohttp: 0.067" in text
    assert "  litellm: not installed: litellm" in text
    assert "50 concurrent async calls" in text
    assert "200 concurrent async calls" in text


def test_a_missing_library_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    by_name = {spec.name: spec for spec in CONTENDERS}
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # find_spec() then says "not installed"
    assert unavailable(by_name["aiohttp-async"]) == "not installed: aiohttp"
    assert unavailable(by_name["modelmix-aiohttp-async"]) == "not installed: aiohttp"
    assert unavailable(by_name["openai-aiohttp-async"]) in ("not installed: aiohttp", "not installed: openai")
    assert unavailable(by_name["modelmix"]) is None


def test_every_contender_is_compared_with_a_raw_transport_of_its_own_kind() -> None:
    by_name = {spec.name: spec for spec in CONTENDERS}
    for spec in CONTENDERS:
        baseline = by_name[spec.baseline]
        assert baseline.baseline == baseline.name, spec.name
        assert baseline.is_async == spec.is_async, spec.name
        assert spec.transport in ("httpx", "aiohttp"), spec.name
    assert [spec.name for spec in CONTENDERS if spec.transport == "aiohttp"] == [
        "aiohttp-async",
        "modelmix-aiohttp-async",
        "openai-aiohttp-async",
    ]


GUARDED = """
import socket, sys
sys.path.insert(0, {benchmarks!r})
from bench_base import forbid_network
attempts = forbid_network()
for host in ("127.0.0.1", "localhost", "example.com", "192.0.2.1"):
    try:
        socket.create_connection((host, 9), timeout=0.5).close()
    except OSError as error:
        print(host, type(error).__name__)
print(*attempts, sep="\\n")
"""


def test_the_network_guard_lets_loopback_through_and_blocks_and_records_the_rest() -> None:
    # In a child: an audit hook can't be removed from the process that installs it.
    proc = subprocess.run(
        [sys.executable, "-c", GUARDED.format(benchmarks=str(BENCHMARKS))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # Port 9 on loopback is closed: refused by the kernel, after the guard let it through.
    assert "127.0.0.1 ConnectionRefusedError" in lines
    assert "example.com ConnectionRefusedError" in lines
    assert "192.0.2.1 ConnectionRefusedError" in lines
    assert lines[-2:] == ["socket.getaddrinfo 'example.com'", "socket.getaddrinfo '192.0.2.1'"]


ORPHANING = """
import os, sys
sys.path.insert(0, {benchmarks!r})
from run import MockServer
server = MockServer()
print(server._proc.pid, flush=True)
os._exit(0)  # dies without stopping its server, as a killed or timed-out benchmark would
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_mock_server_does_not_outlive_the_benchmark_that_started_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ORPHANING.format(benchmarks=str(BENCHMARKS))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30  # it goes at once; the bound is for a loaded machine
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the mock server was still running 30 s after its parent died")
