"""OpenTelemetry traces and metrics of a fallback chain, printed to the console.

The chain's first model does not exist (404), so the call falls back to the second; the call is
one span with a child span per attempt, and the GenAI metrics record its duration, time to first
chunk and tokens. Everything goes through OpenTelemetry's console exporters; in an application
you would configure an OTLP exporter instead and call ``mm.instrument()`` the same way.

    pip install 'modelmix[otel]' opentelemetry-sdk
    OPENAI_API_KEY=... python examples/otel_console.py

(The tests run it against a local fake OpenAI-compatible server, with no network and no key.)
"""

from __future__ import annotations

import json
import sys

import modelmix as mm

try:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricsData, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
except ImportError:
    print("this example needs the OpenTelemetry SDK: pip install 'modelmix[otel]' opentelemetry-sdk")
    sys.exit(0)


def one_line(span: ReadableSpan) -> str:
    """A span as a trace viewer would list it: name, parent, duration and the telling attributes."""
    attributes = dict(span.attributes or {})
    shown = {
        key: attributes[key]
        for key in (
            "gen_ai.provider.name",
            "gen_ai.response.model",
            "error.type",
            "modelmix.fallback.position",
            "modelmix.attempt.retry",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
        )
        if key in attributes
    }
    where = "  └─ " if span.parent is not None else ""
    milliseconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    return f"{where}{span.name} [{span.kind.name}] {milliseconds:.1f} ms {json.dumps(shown)}\n"


def metric_lines(data: MetricsData) -> str:
    lines = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "sum", None) if hasattr(point, "count") else getattr(point, "value", None)
                    count = getattr(point, "count", None)
                    kind = dict(point.attributes or {}).get("gen_ai.token.type", "")
                    lines.append(f"metric {metric.name} {kind} count={count} sum={value}\n".replace("  ", " "))
    return "".join(lines)


def main() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(formatter=metric_lines), export_interval_millis=60_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    # Usually: set the global providers once and call mm.instrument() with no arguments.
    mm.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    with mm.fallback("openai:gpt-does-not-exist", "openai:gpt-4o-mini") as chain:
        print("answer:", chain.chat("What are the primary colours?").text)
        with chain.stream("Write a haiku") as stream:
            print("streamed:", stream.until_done().text)

    mm.uninstrument()
    meter_provider.shutdown()  # flushes the metrics to the console
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
