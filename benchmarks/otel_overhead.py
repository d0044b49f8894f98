"""What observability costs: per-call p50 and streaming rate through ``mm.model()`` with nothing
registered, with a no-op hook, and with OpenTelemetry on (``mm.instrument()`` with the SDK's
tracer and meter providers, spans batched to an exporter that drops them) — side by side, against
the benchmarks' mock server in its own process.

    .venv/bin/python benchmarks/otel_overhead.py            # about a minute on 2 cores
    .venv/bin/python benchmarks/otel_overhead.py --quick    # a smoke run (noise)

The modes are interleaved round by round, so a machine that gets busier mid-run slows them alike;
the CPU time of the calling thread (µs per call, per chunk) is printed next to the wall-clock
figures, as it moves less with the load of a shared machine.
Ratios are against "off". Issue 13's target: OpenTelemetry on costs under 5 % of the p50 and of
the streaming rate. The last line is the SDK's own cost for one call's spans and metric points,
measured with no modelmix in the loop: the floor under any instrumentation of a call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_base import API_KEY, CHAT_MODEL, PROMPT, stream_model
from run import MockServer

import modelmix as mm
from modelmix.observability import Hooks, add_hooks, remove_hooks

MODES = ("off", "hooks", "otel")


class _NoOpHooks(Hooks):
    """A registered hook that does nothing: the cost of the hook layer alone."""


def _otel_providers() -> tuple[Any, Any, Callable[[], None]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return tracer_provider, meter_provider, shutdown


class Switch:
    """Turns one mode on at a time."""

    def __init__(self) -> None:
        self._tracer_provider, self._meter_provider, self.shutdown = _otel_providers()
        self._hooks = _NoOpHooks()

    def set(self, mode: str) -> None:
        remove_hooks(self._hooks)
        mm.uninstrument()
        if mode == "hooks":
            add_hooks(self._hooks)
        elif mode == "otel":
            mm.instrument(tracer_provider=self._tracer_provider, meter_provider=self._meter_provider)


Figures = dict[str, list[float]]


def _figures() -> tuple[Figures, Figures]:
    return {mode: [] for mode in MODES}, {mode: [] for mode in MODES}


def _schedule(rounds: int) -> Iterator[tuple[bool, str]]:
    """``(keep, mode)`` for every mode of every round, in an order rotated round by round so a
    machine that gets busier mid-run slows all modes alike; round 0 warms up (``keep`` False)."""
    for round_no in range(rounds + 1):
        shift = round_no % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            yield round_no > 0, mode


class _Timed:
    """Wall and this thread's CPU time since it was made."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.thread_time(), time.perf_counter()

    def cpu_us_per(self, items: int) -> float:
        return (time.thread_time() - self.cpu) / items * 1e6

    def per_second(self, items: int) -> float:
        return items / (time.perf_counter() - self.wall)


def _latency(switch: Switch, rounds: int, per_round: int, call: Callable[[], Any]) -> tuple[Figures, Figures]:
    """Per-call wall time (µs, every call) and CPU time of this thread (µs per call, per round)."""
    samples, cpu = _figures()
    for keep, mode in _schedule(rounds):
        switch.set(mode)
        timed = _Timed()
        for _ in range(per_round):
            started = time.perf_counter()
            call()
            if keep:
                samples[mode].append((time.perf_counter() - started) * 1e6)
        if keep:
            cpu[mode].append(timed.cpu_us_per(per_round))
    switch.set("off")
    return samples, cpu


async def _alatency(
    switch: Switch, rounds: int, per_round: int, call: Callable[[], Awaitable[Any]]
) -> tuple[Figures, Figures]:
    """Async `_latency` (``asyncio.run`` can't nest, so the loop is its own)."""
    samples, cpu = _figures()
    for keep, mode in _schedule(rounds):
        switch.set(mode)
        timed = _Timed()
        for _ in range(per_round):
            started = time.perf_counter()
            await call()
            if keep:
                samples[mode].append((time.perf_counter() - started) * 1e6)
        if keep:
            cpu[mode].append(timed.cpu_us_per(per_round))
    switch.set("off")
    return samples, cpu


def _rates(switch: Switch, rounds: int, stream: Callable[[], int]) -> tuple[Figures, Figures]:
    """Chunks per second of each stream, and CPU time of this thread per chunk (µs)."""
    rates, cpu = _figures()
    for keep, mode in _schedule(rounds):
        switch.set(mode)
        timed = _Timed()
        chunks = stream()
        if keep:
            rates[mode].append(timed.per_second(chunks))
            cpu[mode].append(timed.cpu_us_per(chunks))
    switch.set("off")
    return rates, cpu


async def _arates(switch: Switch, rounds: int, stream: Callable[[], Awaitable[int]]) -> tuple[Figures, Figures]:
    """Async `_rates`."""
    rates, cpu = _figures()
    for keep, mode in _schedule(rounds):
        switch.set(mode)
        timed = _Timed()
        chunks = await stream()
        if keep:
            rates[mode].append(timed.per_second(chunks))
            cpu[mode].append(timed.cpu_us_per(chunks))
    switch.set("off")
    return rates, cpu


def _print(title: str, unit: str, figures: Figures, cpu: Figures, *, lower_is_better: bool) -> None:
    medians = {mode: statistics.median(values) for mode, values in figures.items()}
    cpu_medians = {mode: statistics.median(values) for mode, values in cpu.items()}
    print(f"\n{title}")
    print(f"  {'mode':<8}{unit:>14}{'× off':>9}{'CPU µs':>10}{'× off':>9}")
    for mode in MODES:
        ratio = medians[mode] / medians["off"]
        cpu_ratio = cpu_medians[mode] / cpu_medians["off"]
        print(f"  {mode:<8}{medians[mode]:>14,.1f}{ratio:>9.3f}{cpu_medians[mode]:>10.2f}{cpu_ratio:>9.3f}")
    worst = medians["otel"] / medians["off"]
    overhead = worst - 1 if lower_is_better else 1 - worst
    print(
        f"  OpenTelemetry overhead: {overhead * 100:+.1f} % ({unit}), "
        f"{(cpu_medians['otel'] / cpu_medians['off'] - 1) * 100:+.1f} % (CPU)"
    )


def _sdk_floor(calls: int) -> float:
    """CPU µs the OpenTelemetry SDK itself takes for what one instrumented chat call asks of it —
    a call span and an attempt span with the conventions' attributes, a duration point, two
    token-usage points and a cost point — on the same pipeline, with no modelmix in the loop.
    No instrumentation layer can cost less than this."""
    from opentelemetry import trace

    tracer_provider, meter_provider, shutdown = _otel_providers()
    tracer, meter = tracer_provider.get_tracer("floor"), meter_provider.get_meter("floor")
    duration, tokens = meter.create_histogram("duration"), meter.create_histogram("tokens")
    cost = meter.create_counter("cost")
    span_attributes: dict[str, str | int] = {f"gen_ai.attribute_{i}": f"value {i}" for i in range(12)}
    metric_attributes = {f"gen_ai.dimension_{i}": f"value {i}" for i in range(6)}

    def one() -> None:
        call = tracer.start_span("chat m", kind=trace.SpanKind.CLIENT, attributes=span_attributes)
        attempt = tracer.start_span("chat m", context=trace.set_span_in_context(call), attributes=span_attributes)
        attempt.set_attributes({"gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 7})
        attempt.end()
        call.set_attributes({"gen_ai.response.model": "m", "gen_ai.response.id": "x"})
        call.end()
        duration.record(0.3, metric_attributes)
        tokens.record(5, {**metric_attributes, "gen_ai.token.type": "input"})
        tokens.record(7, {**metric_attributes, "gen_ai.token.type": "output"})
        cost.add(0.0001, metric_attributes)

    try:
        for _ in range(calls // 10):
            one()
        started = time.thread_time()
        for _ in range(calls):
            one()
        return (time.thread_time() - started) / calls * 1e6
    finally:
        shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (figures are noise)")
    args = parser.parse_args(argv)
    rounds, per_round, chunks, stream_rounds = (2, 20, 200, 2) if args.quick else (20, 50, 2000, 10)
    server = MockServer()
    switch = Switch()
    try:
        model = mm.model(f"openai:{CHAT_MODEL}", base_url=server.base_url, api_key=API_KEY)
        streamer = mm.model(f"openai:{stream_model(chunks)}", base_url=server.base_url, api_key=API_KEY)

        def stream() -> int:
            with streamer.stream(PROMPT) as s:
                return sum(1 for _ in s.text_deltas())

        sync_latency = _latency(switch, rounds, per_round, lambda: model.chat(PROMPT))
        sync_rates = _rates(switch, stream_rounds, stream)

        async def run_async() -> tuple[tuple[Figures, Figures], tuple[Figures, Figures]]:
            async def astream() -> int:
                async with streamer.astream(PROMPT) as s:
                    return sum([1 async for _ in s.text_deltas()])

            latency = await _alatency(switch, rounds, per_round, lambda: model.achat(PROMPT))
            rates = await _arates(switch, stream_rounds, astream)
            await model.aclose()
            await streamer.aclose()
            return latency, rates

        async_latency, async_rates = asyncio.run(run_async())
        model.close()
        streamer.close()
    finally:
        switch.set("off")
        switch.shutdown()
        server.stop()
    print(f"modelmix observability overhead — {rounds}×{per_round} calls, {stream_rounds} streams of {chunks} chunks")
    _print("chat p50 (sync)", "p50 µs", *sync_latency, lower_is_better=True)
    _print("achat p50 (async)", "p50 µs", *async_latency, lower_is_better=True)
    _print("stream rate (sync)", "chunks/s", *sync_rates, lower_is_better=False)
    _print("astream rate (async)", "chunks/s", *async_rates, lower_is_better=False)
    floor = _sdk_floor(200 if args.quick else 5000)
    print(
        f"\nThe OpenTelemetry SDK alone, for one call's two spans and four metric points: {floor:.1f} µs CPU "
        "(the part of the 'otel' CPU figures above that no instrumentation can avoid)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
