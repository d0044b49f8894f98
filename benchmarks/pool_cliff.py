"""More concurrent calls than the connection pool holds, on one model with default settings.

Starts `bench_server.py` in its own process and sends N concurrent ``achat`` calls (or N
concurrent 200-chunk streams) through ``mm.model("openai:…")``, printing the wall time and the
errors by type. The figures in benchmarks/README.md ("Issue 12 progress") come from this script:

    .venv/bin/python benchmarks/pool_cliff.py 200 400 1000
    .venv/bin/python benchmarks/pool_cliff.py 1000 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import subprocess
import sys
import time
from pathlib import Path

import modelmix as mm

SERVER = Path(__file__).resolve().parent / "bench_server.py"


def _memory_mb(field: str) -> float:
    """A `/proc/self/status` figure in MB (``VmRSS`` now, ``VmHWM`` the peak); 0.0 elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    """Start a new peak (`VmHWM`) from the current RSS, where Linux allows it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def run(base_url: str, calls: int, *, stream: bool) -> tuple[float, dict[str, int]]:
    name = "openai:bench-stream-200" if stream else "openai:bench-chat"
    model = mm.model(name, base_url=base_url, api_key="sk-bench")
    errors: collections.Counter[str] = collections.Counter()

    async def one() -> None:
        try:
            if stream:
                async with model.astream("hi") as events:
                    async for _ in events:
                        pass
            else:
                await model.achat("hi")
        except mm.ModelMixError as error:
            errors[f"{type(error).__name__}:{getattr(error, 'kind', '')}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*[one() for _ in range(calls)])
    elapsed = time.perf_counter() - started
    await model.aclose()
    return elapsed, dict(errors)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("calls", nargs="+", type=int, help="how many concurrent calls, one run each")
    parser.add_argument("--stream", action="store_true", help="200-chunk streams instead of calls")
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--exit-with-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        for calls in args.calls:
            gc.collect()
            baseline = _memory_mb("VmRSS")
            _reset_peak()
            elapsed, errors = asyncio.run(run(f"http://127.0.0.1:{port}/v1", calls, stream=args.stream))
            peak = _memory_mb("VmHWM")
            gc.collect()
            after = _memory_mb("VmRSS")
            kind = "streams" if args.stream else "calls"
            print(
                f"{calls} concurrent {kind}: {elapsed:.2f} s, errors {errors or 'none'}; RSS {baseline:.1f} MB "
                f"before, peak {peak:.1f} MB (+{peak - baseline:.1f}), {after:.1f} MB after",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()
        for pipe in (server.stdin, server.stdout):
            if pipe is not None:
                pipe.close()


if __name__ == "__main__":
    main()
