"""OpenTelemetry SDK fixtures: in-memory span and metric exporters behind `instrument()`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK is not installed (modelmix[otel] + sdk)")

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelmix.observability import instrument, uninstrument

__all__ = ["SpanKind", "StatusCode", "Telemetry", "attrs", "loads", "make_telemetry", "trace"]


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def roots(self) -> list[ReadableSpan]:
        ids = {s.context.span_id for s in self.finished()}
        return [s for s in self.finished() if s.parent is None or s.parent.span_id not in ids]

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        kids = [s for s in self.finished() if s.parent is not None and s.parent.span_id == span.context.span_id]
        return sorted(kids, key=lambda s: s.start_time or 0)

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def everything(self) -> str:
        """Every exported span (names, attributes, events, status) and metric as one text."""
        parts: list[str] = []
        for span in self.finished():
            parts.append(span.to_json())
        data = self.metrics.get_metrics_data()
        if data is not None:
            parts.append(data.to_json())
        return "\n".join(parts)


def make_telemetry(**options: Any) -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **options)
    try:
        yield Telemetry(spans, reader, tracer_provider)
    finally:
        uninstrument()
        meter_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def loads(value: Any) -> Any:
    return json.loads(str(value))
