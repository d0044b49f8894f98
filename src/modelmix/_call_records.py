"""What hooks are told: the `Hooks` interface and the records of a call and its attempts.

The records are built on every call while a hook is registered, so they hold only what is known
for free (the models, the times, the outcome); everything derived — usage, cost, addresses,
merged settings — is worked out when a hook reads it.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._response import ChatResponse, Usage, summed_cost, summed_usage

if TYPE_CHECKING:
    from ._messages import MessagesInput
    from ._model import Model

__all__ = ["AttemptInfo", "CallInfo", "Hooks", "RetryWait", "address_of", "attempt_slot", "response_id_of"]

attempt_slot: contextvars.ContextVar[tuple[int | None, int]] = contextvars.ContextVar(
    "modelmix_attempt_slot", default=(None, 0)
)
"""(fallback position, retry number) of the attempt about to start, set by the plan drivers and hedges."""


class Hooks:
    """Receives the story of every call. Subclass it and override the methods you need; register
    it with `modelmix.observability.add_hooks`. The methods run inline on sync and async calls
    alike (on the caller's thread or event loop): keep them quick and hand slow work to a queue.

    An exception a hook raises is logged and swallowed: observing a call never changes its outcome.
    """

    def call_started(self, call: CallInfo) -> None:
        """The user called a model (for a stream: the stream is being opened)."""

    def request_sent(self, attempt: AttemptInfo) -> None:
        """An attempt starts: a request is sent to one concrete model on behalf of `attempt.call`."""

    def first_chunk(self, attempt: AttemptInfo) -> None:
        """A streamed attempt delivered its first content (text, a tool call, reasoning)."""

    def attempt_finished(self, attempt: AttemptInfo) -> None:
        """An attempt ended: answered, failed, lost a hedge race, or its stream was closed."""

    def retry_wait(self, wait: RetryWait) -> None:
        """The call is about to wait `wait.seconds` before retrying the model whose attempt
        `wait.failed` just failed (called before the wait, sync and async alike)."""

    def call_finished(self, call: CallInfo) -> None:
        """The call ended; for a stream when it was read to its end, failed or was closed."""


class _Timeline:
    """What a call and an attempt both have: when they started, first delivered and ended, and how."""

    __slots__ = ("ended", "error", "first_chunk_at", "outcome", "response", "scratch", "started")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        """`time.perf_counter()` when it started (`duration` and `time_to_first_chunk` are in seconds)."""
        self.first_chunk_at: float | None = None
        self.ended: float | None = None
        self.outcome = "pending"
        """``ok``, ``error``, ``cancelled`` (a cancelled call, a hedge's losing attempt) or ``closed``
        (a stream closed before its end)."""
        self.error: BaseException | None = None
        self.response: ChatResponse | None = None
        self.scratch: dict[Any, Any] = {}
        """Free space for hooks (a span, a start time), keyed by the hook."""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def time_to_first_chunk(self) -> float | None:
        """Streams: seconds until the first content arrived."""
        return None if self.first_chunk_at is None else self.first_chunk_at - self.started

    @property
    def error_type(self) -> str | None:
        """The error's class name. A stream the caller closed before its end did not fail: no
        error type, though its finish reason is "error" (it did not get the model's final event)."""
        return None if self.error is None else type(self.error).__name__


class CallInfo(_Timeline):
    """One logical call, as hooks see it. Read-only for hooks except `scratch`."""

    __slots__ = (
        "_settings",
        "attempts",
        "finish_reasons",
        "messages",
        "model",
        "primary",
        "provider",
        "streaming",
        "target",
    )

    operation = "chat"
    """``gen_ai.operation.name``: modelmix's calls are chat completions."""

    def __init__(self, target: Model, messages: MessagesInput, settings: Mapping[str, Any], streaming: bool) -> None:
        super().__init__()
        primary = _primary(target)
        self.target = target
        """The model the user called (a chain, a retrying model, a provider model...)."""
        self.primary = primary
        """The concrete model asked first (a chain's first member, a hedge's primary)."""
        self.provider = primary.provider
        self.model = primary.name
        self.streaming = streaming
        self.messages = messages
        """The prompt, for opt-in content capture only."""
        self._settings = settings
        self.attempts: list[AttemptInfo] = []
        self.finish_reasons: list[str] = []

    # What follows is worked out when a hook asks, not on every call.

    @property
    def settings(self) -> Mapping[str, Any]:
        """The call's settings over the first model's defaults."""
        defaults = self.primary.settings
        return {**defaults, **self._settings} if defaults else self._settings

    @property
    def in_process(self) -> bool:
        """True when every model the call may use runs in this process (the in-process model)."""
        return _in_process(self.target)

    @property
    def answered_by(self) -> AttemptInfo | None:
        """The attempt whose answer the call returned."""
        for attempt in reversed(self.attempts):
            if attempt.outcome == "ok":
                return attempt
        return None

    @property
    def usage(self) -> Usage | None:
        """Tokens of the whole call, failed and lost attempts included."""
        if self.response is not None:
            return self.response.total_usage
        return summed_usage(a.usage for a in self.attempts)

    @property
    def cost(self) -> Decimal | None:
        """USD cost of the whole call (see `ChatResponse.total_cost`)."""
        if self.response is not None:
            return self.response.total_cost
        return summed_cost(self.attempts)


class AttemptInfo(_Timeline):
    """One request to one concrete model within a call."""

    __slots__ = ("_streamed_id", "call", "concrete", "model", "position", "provider", "retry_no")

    def __init__(self, call: CallInfo, model: Model) -> None:
        super().__init__()
        self.call = call
        self.concrete = model
        """The model the request went to (a provider model, the in-process model...)."""
        self.provider = model.provider
        self.model = model.name
        position, self.retry_no = attempt_slot.get()
        self.position = position or 0
        """Which model of a chain (0: the first) or of a hedge (0: primary, 1: backup)."""
        self._streamed_id: str | None = None  # a stream's id, from its events (set by `_observe`)

    # What follows is worked out when a hook asks, not on every attempt.

    @property
    def host(self) -> str | None:
        """``host`` or ``host:port`` of the server (None in-process)."""
        return self.concrete.host

    @property
    def in_process(self) -> bool:
        return self.concrete.host is None

    @property
    def server_address(self) -> str | None:
        return address_of(self.concrete)[0]

    @property
    def server_port(self) -> int | None:
        return address_of(self.concrete)[1]

    @property
    def usage(self) -> Usage | None:
        """Tokens this attempt consumed, where known (a failed attempt knows them when its answer
        arrived and was then rejected, or its stream was cut after the usage)."""
        source = self.response if self.response is not None else self.error
        usage = getattr(source, "usage", None)
        return usage if isinstance(usage, Usage) else None

    @property
    def cost(self) -> Decimal | None:
        source = self.response if self.response is not None else self.error
        cost = getattr(source, "cost", None)
        return cost if isinstance(cost, Decimal) else None

    @property
    def request_id(self) -> str | None:
        source = self.response if self.response is not None else self.error
        request_id = getattr(source, "request_id", None)
        return request_id if isinstance(request_id, str) else None

    @property
    def response_model(self) -> str | None:
        """The model that answered, as the server named it."""
        return None if self.response is None else self.response.model

    @property
    def response_id(self) -> str | None:
        """The completion's id: from the answer's body, or for a stream from its events once they
        carried it (a chunk's ``id``, the Responses ``response.id``), even if it failed later."""
        if self.response is not None:
            found = response_id_of(self.response)
            if found is not None:
                return found
        return self._streamed_id

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped; ``error`` when the attempt ended without the model's final event."""
        if self.response is not None and self.response.finish_reason is not None:
            return str(self.response.finish_reason)
        return None if self.outcome in ("ok", "pending") else "error"


class RetryWait:
    """A wait before a retry: the call sleeps `seconds`, then sends its next request to the model
    whose attempt `failed` just failed. Read-only for hooks."""

    __slots__ = ("call", "failed", "seconds")

    def __init__(self, call: CallInfo, failed: AttemptInfo, seconds: float) -> None:
        self.call = call
        self.failed = failed
        """The attempt whose failure is being retried (its `error_type` is why)."""
        self.seconds = seconds
        """How long the call waits before the retry (a server's retry hint, or the backoff)."""

    @property
    def retry_no(self) -> int:
        """The retry that follows the wait: 1 for the model's first retry (its attempts' `retry_no`)."""
        return self.failed.retry_no + 1

    @property
    def provider(self) -> str:
        return self.failed.provider

    @property
    def model(self) -> str:
        return self.failed.model

    @property
    def position(self) -> int:
        return self.failed.position

    @property
    def error_type(self) -> str | None:
        return self.failed.error_type


def response_id_of(response: ChatResponse) -> str | None:
    """The id in an answer's body (the `raw` JSON a non-streamed answer keeps)."""
    raw = response.raw
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _primary(model: Model) -> Model:
    """The concrete model a call asks first: a chain's first member, a hedge's primary."""
    current = model.unwrap()
    for _ in range(32):  # chains of chains, bounded
        members = getattr(current, "models", None) or getattr(current, "tiers", None)
        if not isinstance(members, list) or not members:
            break
        current = members[0].unwrap()
    return current


def _in_process(model: Model) -> bool:
    inner = model.unwrap()
    members = getattr(inner, "models", None) or getattr(inner, "tiers", None)
    if isinstance(members, list) and members:
        return all(_in_process(m) for m in members)
    backup = getattr(model, "backup", None)
    if backup is not None and backup is not model:
        return inner.host is None and _in_process(backup)
    return inner.host is None


def address_of(model: Model) -> tuple[str | None, int | None]:
    base_url = getattr(model, "base_url", None)
    host = getattr(base_url, "host", None)
    if not isinstance(host, str) or not host:
        return None, None
    port = getattr(base_url, "port", None)
    if port is None:
        port = {"https": 443, "http": 80}.get(getattr(base_url, "scheme", ""))
    return host, port
