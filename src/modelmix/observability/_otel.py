"""OpenTelemetry spans and metrics for every call, built on the call hooks.

One span per logical call (``chat gpt-4o-mini``) with a child span per attempt, and the GenAI
client metrics, following the GenAI semantic conventions pinned in `SEMCONV_VERSION`. The
attribute names are written out here rather than imported from the semantic-conventions
package's incubating module, which moves between releases.

Nothing of OpenTelemetry is imported until `instrument()` runs.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError, ProviderError
from .._observe import AttemptInfo, CallInfo, Hooks, RetryWait, add_hooks, address_of, remove_hooks
from .._version import __version__
from ._content import ContentHook, as_json, capture_from_env, input_messages, output_messages

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, SpanKind, TracerProvider

    from .._model import Model
    from .._response import Usage

logger = logging.getLogger("modelmix")

__all__ = ["SCHEMA_URL", "SEMCONV_VERSION", "Instrumentation", "instrument", "uninstrument"]

SEMCONV_VERSION = "1.44.0"
"""The OpenTelemetry semantic conventions release whose GenAI client spans and metrics are implemented."""
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

# GenAI attributes (status "Development" in the conventions).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
# modelmix's own.
OUTCOME = "modelmix.outcome"
POSITION = "modelmix.fallback.position"
RETRY = "modelmix.attempt.retry"
ATTEMPTS = "modelmix.attempt.count"
COST = "modelmix.cost.usd"
ANSWERED_BY = "modelmix.response.provider"
CONTENT_REFERENCE = "modelmix.content.reference"
RETRY_WAIT = "modelmix.retry.wait"
"""The call span's event when the call waits before a retry."""
RETRY_WAIT_SECONDS = "modelmix.retry.wait.seconds"
HTTP_STATUS = "http.response.status_code"

_REQUEST_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}

_PROVIDER_NAMES = {"openai": "openai", "azure": "azure.ai.openai"}
"""modelmix's provider prefixes that have a well-known name in the conventions; others are kept."""

_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


def provider_name(provider: str) -> str:
    return _PROVIDER_NAMES.get(provider, provider)


class _Described:
    """What names a model in spans and metrics, prepared once per model object."""

    __slots__ = ("attributes", "dimensions", "kind", "span_name")

    def __init__(self, span_name: str, kind: SpanKind, attributes: dict[str, Any], dimensions: dict[str, Any]) -> None:
        self.span_name = span_name
        self.kind = kind
        self.attributes = attributes
        """Span attributes: operation, provider, request model, server address and port."""
        self.dimensions = dimensions
        """Metric dimensions: operation, provider, request model."""


class Instrumentation(Hooks):
    """The hooks `instrument()` registers: spans through a tracer, metrics through a meter."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool | None = None,
        content_hook: ContentHook | None = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:
            raise ConfigurationError("instrument() needs the OpenTelemetry API: pip install 'modelmix[otel]'") from exc
        self._trace = trace
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR
        self._kinds = {True: trace.SpanKind.INTERNAL, False: trace.SpanKind.CLIENT}
        self.tracer = trace.get_tracer("modelmix", __version__, tracer_provider, schema_url=SCHEMA_URL)
        meter = metrics.get_meter("modelmix", __version__, meter_provider, schema_url=SCHEMA_URL)
        self.capture_content = capture_from_env() if capture_content is None else capture_content
        self.content_hook = content_hook
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._cost = meter.create_counter("modelmix.client.cost", unit="USD", description="USD spent on model calls.")
        # Per model object, weakly: an application's models are few, and one dropped is forgotten.
        self._models: weakref.WeakKeyDictionary[Model, _Described] = weakref.WeakKeyDictionary()
        self._calls: weakref.WeakKeyDictionary[Model, _Described] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------------------ spans

    def _described(self, model: Model, *, call: CallInfo | None = None) -> _Described:
        """What names `model` in spans and metrics: the concrete model an attempt asked, or (with
        `call`) the model a call was made on. Worked out once per model object, not per call."""
        cache = self._calls if call is not None else self._models
        try:
            found = cache.get(model)
        except TypeError:  # a model class that can't be a weak dictionary key: not cached
            return self._describe(model, call)
        if found is None:
            found = cache[model] = self._describe(model, call)
        return found

    def _describe(self, model: Model, call: CallInfo | None) -> _Described:
        if call is not None:
            asked, in_process = call.primary, call.in_process
        else:
            asked, in_process = model, model.host is None
        operation = CallInfo.operation
        dimensions: dict[str, Any] = {
            OPERATION: operation,
            PROVIDER: provider_name(asked.provider),
            REQUEST_MODEL: asked.name,
        }
        attributes = dict(dimensions)
        address, port = address_of(asked)
        if address is not None:
            attributes[SERVER_ADDRESS] = address
            if port is not None:
                attributes[SERVER_PORT] = port
        return _Described(f"{operation} {asked.name}", self._kinds[in_process], attributes, dimensions)

    def call_started(self, call: CallInfo) -> None:
        described = self._described(call.target, call=call)
        # Attributes a sampler may decide on are given at creation (a copy: a sampler may keep it).
        attributes = dict(described.attributes)
        settings = call.settings
        if settings:
            _add_request_attributes(attributes, settings)
        call.scratch[self] = self.tracer.start_span(described.span_name, kind=described.kind, attributes=attributes)

    def request_sent(self, attempt: AttemptInfo) -> None:
        # The attempt's span is made when the attempt ends, with its real start time: one SDK
        # call with every attribute instead of a start, a second round of attributes and an end.
        if self in attempt.call.scratch:  # else the call started before instrument()
            attempt.scratch[self] = time.time_ns()

    def attempt_finished(self, attempt: AttemptInfo) -> None:
        described = self._described(attempt.concrete)
        # Each derived field is read once and shared by the span and the metric points.
        usage, cost, response_model = attempt.usage, attempt.cost, attempt.response_model
        started: int | None = attempt.scratch.pop(self, None)
        parent: Span | None = attempt.call.scratch.get(self)
        if started is not None and parent is not None:
            attributes = dict(described.attributes)
            attributes[POSITION] = attempt.position
            attributes[RETRY] = attempt.retry_no
            attributes[OUTCOME] = attempt.outcome
            finish_reason = attempt.finish_reason
            if finish_reason is not None:
                attributes[FINISH_REASONS] = (finish_reason,)
            _set_response(attributes, response_model, attempt.response_id)
            _set_usage(attributes, usage)
            if cost is not None:
                attributes[COST] = float(cost)
            first_chunk = attempt.time_to_first_chunk
            if first_chunk is not None:
                attributes[TIME_TO_FIRST_CHUNK] = first_chunk
            span = self.tracer.start_span(
                described.span_name,
                context=self._trace.set_span_in_context(parent),
                kind=described.kind,
                attributes=attributes,
                start_time=started,
            )
            self._end(span, attempt.error, attempt.outcome)
        if usage is not None or cost is not None:
            self._record_usage(attempt, described, usage, cost, response_model)

    def retry_wait(self, wait: RetryWait) -> None:
        span: Span | None = wait.call.scratch.get(self)
        if span is None:
            return
        failed = wait.failed
        details: dict[str, Any] = {RETRY_WAIT_SECONDS: float(wait.seconds), RETRY: wait.retry_no}
        if failed.error is not None:
            details[ERROR_TYPE] = type(failed.error).__name__
            status = getattr(failed.error, "status", None)
            if isinstance(status, int):
                details[HTTP_STATUS] = status
        details[PROVIDER] = provider_name(failed.provider)
        details[REQUEST_MODEL] = failed.model
        details[POSITION] = failed.position
        span.add_event(RETRY_WAIT, details)

    def call_finished(self, call: CallInfo) -> None:
        span: Span | None = call.scratch.pop(self, None)
        answered = call.answered_by
        if span is not None:
            attributes: dict[str, Any] = {
                OUTCOME: call.outcome,
                ATTEMPTS: len(call.attempts),
                FINISH_REASONS: tuple(call.finish_reasons),
            }
            if answered is not None:
                attributes[POSITION] = answered.position
                attributes[ANSWERED_BY] = provider_name(answered.provider)
                _set_response(attributes, answered.response_model, answered.response_id)
            _set_usage(attributes, call.usage)
            cost = call.cost
            if cost is not None:
                attributes[COST] = float(cost)
            first_chunk = call.time_to_first_chunk
            if first_chunk is not None:
                attributes[TIME_TO_FIRST_CHUNK] = first_chunk
            if self.capture_content or self.content_hook is not None:
                attributes.update(self._content(call))
            span.set_attributes(attributes)
            _skipped_models(span, call)
            self._end(span, call.error, call.outcome)
        self._record_call(call, answered)

    def _content(self, call: CallInfo) -> Mapping[str, Any]:
        if not self.capture_content and self.content_hook is None:
            return {}
        system, inputs = input_messages(call)
        outputs = output_messages(call)
        attributes: dict[str, Any] = {}
        if self.capture_content:
            attributes[INPUT_MESSAGES] = as_json(inputs)
            attributes[OUTPUT_MESSAGES] = as_json(outputs)
            if system:
                attributes[SYSTEM_INSTRUCTIONS] = as_json(system)
        if self.content_hook is not None:
            try:
                reference = self.content_hook(
                    call, [{"role": "system", "parts": system}, *inputs] if system else inputs, outputs
                )
            except Exception as exc:
                # Named by class only: the hook's error may quote the content it was handling.
                logger.error(
                    "modelmix content_hook failed with %s; the span has no content reference", type(exc).__name__
                )
                reference = None
            if reference is not None:
                attributes[CONTENT_REFERENCE] = str(reference)
        return attributes

    def _end(self, span: Span, error: BaseException | None, outcome: str) -> None:
        if outcome == "error" and error is not None:
            kind = type(error).__name__
            span.set_attribute(ERROR_TYPE, kind)
            # Only what modelmix knows for sure is safe: the class and the structured fields.
            # A message may quote the server, which may quote the prompt.
            span.add_event("exception", {"exception.type": _qualified(error), "exception.message": safe_summary(error)})
            span.set_status(self._status(self._error, kind))
        span.end()

    # ---------------------------------------------------------------------------- metrics

    def _record_call(self, call: CallInfo, answered: AttemptInfo | None) -> None:
        attributes = dict(self._described(call.target, call=call).dimensions)
        attributes[OUTCOME] = call.outcome
        if answered is not None:
            attributes[POSITION] = answered.position
            response_model = answered.response_model
            if response_model is not None:
                attributes[RESPONSE_MODEL] = response_model
        if call.outcome == "error" and call.error is not None:
            attributes[ERROR_TYPE] = type(call.error).__name__
        duration = call.duration
        if duration is not None:
            self._duration.record(duration, attributes)
        first_chunk = call.time_to_first_chunk
        if first_chunk is not None:
            self._first_chunk.record(first_chunk, attributes)

    def _record_usage(
        self,
        attempt: AttemptInfo,
        described: _Described,
        usage: Usage | None,
        cost: Decimal | None,
        response_model: str | None,
    ) -> None:
        """Tokens and cost are counted per attempt, by the model that spent them."""
        attributes = dict(described.dimensions)
        attributes[POSITION] = attempt.position
        attributes[OUTCOME] = attempt.outcome
        if response_model is not None:
            attributes[RESPONSE_MODEL] = response_model
        if usage is not None:
            self._tokens.record(usage.input_tokens, {**attributes, TOKEN_TYPE: "input"})
            self._tokens.record(usage.output_tokens, {**attributes, TOKEN_TYPE: "output"})
        if cost is not None:
            self._cost.add(float(cost), attributes)


def _skipped_models(span: Span, call: CallInfo) -> None:
    """A chain member its circuit breaker refused sent no request, so it has no attempt span: the
    call's span says it was passed over, from the attempts the call recorded."""
    source = call.response if call.response is not None else call.error
    recorded = getattr(source, "attempts", None) or []
    if len(recorded) <= len(call.attempts):  # every recorded attempt sent a request
        return
    for record in recorded:
        if getattr(record, "error", None) == "CircuitOpenError":
            details = {PROVIDER: provider_name(record.provider), REQUEST_MODEL: record.model}
            if record.host:
                details["modelmix.server"] = record.host
            span.add_event("modelmix.circuit_open", details)


def safe_summary(error: BaseException) -> str:
    """An error described from its class and structured fields only: never its message."""
    facts = [type(error).__name__]
    if isinstance(error, ProviderError):
        for name in ("status", "phase", "provider", "model", "host", "request_id"):
            value = getattr(error, name, None)
            if value is not None:
                facts.append(f"{name}={value}")
    return " ".join(facts)


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _add_request_attributes(attributes: dict[str, Any], settings: Mapping[str, Any]) -> None:
    """The sampling settings the conventions name (``gen_ai.request.temperature``...)."""
    for key, name in _REQUEST_SETTINGS.items():
        value = settings.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[name] = value
    stop = settings.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = (stop,)
    elif stop:
        attributes["gen_ai.request.stop_sequences"] = tuple(str(s) for s in stop)


def _set_response(attributes: dict[str, Any], model: str | None, response_id: str | None) -> None:
    if model is not None:
        attributes[RESPONSE_MODEL] = model
    if response_id is not None:
        attributes[RESPONSE_ID] = response_id


def _set_usage(attributes: dict[str, Any], usage: Any) -> None:
    if usage is None:
        return
    attributes[INPUT_TOKENS] = usage.input_tokens
    attributes[OUTPUT_TOKENS] = usage.output_tokens
    if usage.cached_tokens is not None:
        attributes[CACHE_READ_TOKENS] = usage.cached_tokens
    if usage.cache_write_tokens is not None:
        attributes[CACHE_CREATION_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens is not None:
        attributes[REASONING_TOKENS] = usage.reasoning_tokens


# ------------------------------------------------------------------------------ switching

_lock = threading.Lock()
_installed: Instrumentation | None = None


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
    content_hook: ContentHook | None = None,
) -> Instrumentation:
    """Emit OpenTelemetry spans and metrics for every modelmix call from now on.

    Spans and metrics go through the global tracer and meter providers unless you pass your own.
    Message content is captured only when `capture_content` is True, or it is None and
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. `content_hook` receives each
    call's messages (whatever `capture_content` says) and returns a reference to record instead.
    Calling it again replaces the previous instrumentation; `uninstrument()` switches it off.
    """
    global _installed
    if content_hook is not None and not callable(content_hook):
        raise ConfigurationError(
            f"instrument(content_hook=...) takes a function (call, inputs, outputs) -> str | None, "
            f"not {type(content_hook).__name__}"
        )
    hooks = Instrumentation(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        content_hook=content_hook,
    )
    with _lock:
        if _installed is not None:
            remove_hooks(_installed)
        _installed = hooks
        add_hooks(hooks)
    return hooks


def uninstrument() -> None:
    """Stop emitting spans and metrics (a no-op when `instrument()` was not called)."""
    global _installed
    with _lock:
        if _installed is not None:
            remove_hooks(_installed)
            _installed = None
