"""Call hooks: what modelmix tells observers about each call and each attempt inside it.

A *call* is what the user asked of the outermost modelmix model (a retrying model, a chain, a
hedge, a bare provider model or the in-process model); every request sent to a concrete model on
its behalf is an *attempt* of it. The first model entered opens the call and makes it current (a
context variable), so the models it calls record attempts of that call instead of calls of their
own.

Nothing here runs unless a `Hooks` object is registered: each call site checks the module-level
`ACTIVE` flag first, so a program without observers pays one attribute read per call and nothing
per stream chunk. This module imports nothing heavy (``import modelmix`` stays light); the
OpenTelemetry layer (``modelmix.observability``) is built on it.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ._response import ChatResponse, Usage, summed_cost, summed_usage

if TYPE_CHECKING:
    from ._messages import MessagesInput
    from ._model import Model
    from ._streaming import AsyncStream, Stream, _StreamState
    from .resilience._streams import Connected

__all__ = ["ACTIVE", "AttemptInfo", "CallInfo", "Hooks", "add_hooks", "remove_hooks"]

logger = logging.getLogger("modelmix")

ACTIVE = False
"""True while at least one `Hooks` is registered: call sites read it before doing anything."""

_registered: tuple[Hooks, ...] = ()
_current: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("modelmix_call", default=None)
_slot: contextvars.ContextVar[tuple[int | None, int]] = contextvars.ContextVar("modelmix_slot", default=(None, 0))
"""(fallback position, retry number) of the attempt about to start, set by the plan drivers and hedges."""

T = TypeVar("T")


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

    __slots__ = ("call", "concrete", "model", "position", "provider", "retry_no")

    def __init__(self, call: CallInfo, model: Model) -> None:
        super().__init__()
        self.call = call
        self.concrete = model
        """The model the request went to (a provider model, the in-process model...)."""
        self.provider = model.provider
        self.model = model.name
        position, self.retry_no = _slot.get()
        self.position = position or 0
        """Which model of a chain (0: the first) or of a hedge (0: primary, 1: backup)."""

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
        """The completion's id (non-streamed answers)."""
        return None if self.response is None else _response_id(self.response)

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped; ``error`` when the attempt ended without the model's final event."""
        if self.response is not None and self.response.finish_reason is not None:
            return str(self.response.finish_reason)
        return None if self.outcome in ("ok", "pending") else "error"


# ---------------------------------------------------------------------------------- registry


def add_hooks(hooks: Hooks) -> None:
    """Start telling `hooks` about every call (until `remove_hooks`)."""
    global _registered, ACTIVE
    given: object = hooks  # typed callers can't get it wrong; untyped ones can
    if not isinstance(given, Hooks):
        from ._exceptions import ConfigurationError

        raise ConfigurationError(
            f"add_hooks() takes a modelmix.observability.Hooks instance, not {type(hooks).__name__}"
        )
    if hooks not in _registered:
        _registered = (*_registered, hooks)
    ACTIVE = True


def remove_hooks(hooks: Hooks) -> None:
    """Stop telling `hooks` about calls (calls in flight may still report to it once)."""
    global _registered, ACTIVE
    _registered = tuple(h for h in _registered if h is not hooks)
    ACTIVE = bool(_registered)


def registered() -> tuple[Hooks, ...]:
    return _registered


def _emit(method: str, record: Any) -> None:
    for hooks in _registered:
        try:
            getattr(hooks, method)(record)
        except Exception:  # an observer's bug must not change the call's outcome
            logger.exception("modelmix hook %s.%s failed", type(hooks).__name__, method)


# ------------------------------------------------------------------------------- lifecycle


def _start_call(target: Model, messages: MessagesInput, settings: Mapping[str, Any], streaming: bool) -> CallInfo:
    call = CallInfo(target, messages, settings, streaming)
    _emit("call_started", call)
    return call


def _finish_call(
    call: CallInfo, *, response: ChatResponse | None = None, error: BaseException | None = None, completed: bool = True
) -> None:
    if call.ended is not None:
        return
    call.ended = time.perf_counter()
    call.response, call.error = response, error
    call.outcome = _outcome(response, error, completed)
    for attempt in call.attempts:  # a stream's attempt still open ends with its call
        if attempt.ended is None:
            _finish_attempt(attempt, error=error, completed=completed, ended=call.ended)
    if response is not None and response.finish_reason is not None:
        call.finish_reasons = [str(response.finish_reason)]
    elif call.outcome != "ok":
        call.finish_reasons = ["error"]
    _emit("call_finished", call)


def _start_attempt(call: CallInfo, model: Model) -> AttemptInfo:
    attempt = AttemptInfo(call, model)
    call.attempts.append(attempt)
    _emit("request_sent", attempt)
    return attempt


def _finish_attempt(
    attempt: AttemptInfo,
    *,
    response: ChatResponse | None = None,
    error: BaseException | None = None,
    completed: bool = True,
    ended: float | None = None,
) -> None:
    if attempt.ended is not None:
        return
    attempt.ended = ended or time.perf_counter()
    attempt.response, attempt.error = response, error
    attempt.outcome = _outcome(response, error, completed)
    _emit("attempt_finished", attempt)


def _first_chunk(attempt: AttemptInfo) -> None:
    now = time.perf_counter()
    attempt.first_chunk_at = now
    call = attempt.call
    if call.first_chunk_at is None:
        call.first_chunk_at = now
    _emit("first_chunk", attempt)


# ------------------------------------------------------------------------------ call sites


class _Opening:
    """Opens the call `target` makes (current while the block runs), unless a call is already
    current — then `call` is None and `target` runs inside it. A failure in the block ends the call.
    (A class rather than a generator: it runs on every call while hooks are registered.)"""

    __slots__ = ("_token", "call")

    def __init__(self, target: Model, messages: MessagesInput, settings: Mapping[str, Any], streaming: bool) -> None:
        self.call: CallInfo | None = None
        if _current.get() is None:
            self.call = _start_call(target, messages, settings, streaming)

    def __enter__(self) -> CallInfo | None:
        if self.call is not None:
            self._token = _current.set(self.call)
        return self.call

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if self.call is not None:
            _current.reset(self._token)
            if error is not None:
                _finish_call(self.call, error=error)


def observe_chat(target: Model, messages: MessagesInput, settings: Mapping[str, Any], run: Callable[[], T]) -> T:
    """A wrapper's sync chat: opens the call unless one is current (an inner model is an attempt)."""
    with _Opening(target, messages, settings, False) as call:
        response = run()
    if call is not None:
        _finish_call(call, response=response)  # type: ignore[arg-type]
    return response


async def aobserve_chat(
    target: Model, messages: MessagesInput, settings: Mapping[str, Any], run: Callable[[], Awaitable[T]]
) -> T:
    """`observe_chat` for ``achat``."""
    with _Opening(target, messages, settings, False) as call:
        response = await run()
    if call is not None:
        _finish_call(call, response=response)  # type: ignore[arg-type]
    return response


class _Attempting:
    """One attempt of the current call (or of a call of its own, for a model called directly).
    The block hands its answer to `answered`; a failure ends the attempt (and its own call)."""

    __slots__ = ("attempt", "own")

    def __init__(self, model: Model, messages: MessagesInput, settings: Mapping[str, Any]) -> None:
        call = _current.get()
        self.own = call is None
        if call is None:
            call = _start_call(model, messages, settings, False)
        self.attempt = _start_attempt(call, model)

    def __enter__(self) -> _Attempting:
        return self

    def answered(self, response: T) -> T:
        _finish_attempt(self.attempt, response=response)  # type: ignore[arg-type]
        if self.own:
            _finish_call(self.attempt.call, response=response)  # type: ignore[arg-type]
        return response

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if error is not None:
            _finish_attempt(self.attempt, error=error)
            if self.own:
                _finish_call(self.attempt.call, error=error)


def attempt_chat(model: Model, messages: MessagesInput, settings: Mapping[str, Any], run: Callable[[], T]) -> T:
    """A concrete model's sync chat: one attempt."""
    with _Attempting(model, messages, settings) as scope:
        return scope.answered(run())


async def aattempt_chat(
    model: Model, messages: MessagesInput, settings: Mapping[str, Any], run: Callable[[], Awaitable[T]]
) -> T:
    """`attempt_chat` for ``achat``."""
    with _Attempting(model, messages, settings) as scope:
        return scope.answered(await run())


class StreamObserver:
    """Follows one concrete model's stream: its attempt starts when it is opened, its first
    content is reported once (the stream's commit point), and it ends when the stream is released."""

    __slots__ = ("attempt", "own")

    def __init__(self) -> None:
        self.attempt: AttemptInfo | None = None
        self.own = False

    def opening(
        self, model: Model, messages: MessagesInput, settings: Mapping[str, Any], parent: CallInfo | None
    ) -> None:
        call = parent
        if call is None:
            call = _start_call(model, messages, settings, streaming=True)
            self.own = True
        self.attempt = _start_attempt(call, model)

    def open_failed(self, error: BaseException) -> None:
        self.ended(None, error, completed=False)

    def first_chunk(self) -> None:
        if self.attempt is not None:
            _first_chunk(self.attempt)

    def released(self, state: _StreamState) -> None:
        self.ended(state.response, getattr(state, "failure", None), completed=state.response is not None)

    def ended(self, response: ChatResponse | None, error: BaseException | None, *, completed: bool) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        _finish_attempt(attempt, response=response, error=error, completed=completed)
        if self.own:
            _finish_call(attempt.call, response=response, error=error, completed=completed)


def observe_leaf_stream(
    stream: Stream | AsyncStream, model: Model, messages: MessagesInput, settings: Mapping[str, Any]
) -> None:
    """Make a concrete model's new stream report its attempt (called where the stream is built)."""
    from ._streaming import Stream

    parent = _current.get()
    observer = StreamObserver()
    stream._state.observer = observer
    opener: Any = stream._opener

    if isinstance(stream, Stream):

        def opened() -> Any:
            observer.opening(model, messages, settings, parent)
            try:
                return opener()
            except BaseException as exc:
                observer.open_failed(exc)
                raise

        stream._opener = opened
        return

    async def aopened() -> Any:
        observer.opening(model, messages, settings, parent)
        try:
            return await opener()
        except BaseException as exc:
            observer.open_failed(exc)
            raise

    stream._opener = aopened


def observe_stream_call(
    target: Model, messages: MessagesInput, settings: Mapping[str, Any], connect: Callable[[], Connected]
) -> Callable[[], Connected]:
    """A wrapper's sync stream: its connect (retries, fallback up to the commit point) runs as the
    call, which then ends with the stream."""

    def observed() -> Connected:
        with _Opening(target, messages, settings, True) as call:
            conn = connect()
        if call is not None:
            _end_with(conn, call)
        return conn

    return observed


def aobserve_stream_call(
    target: Model, messages: MessagesInput, settings: Mapping[str, Any], connect: Callable[[], Awaitable[Connected]]
) -> Callable[[], Awaitable[Connected]]:
    """`observe_stream_call` for ``astream``."""

    async def observed() -> Connected:
        with _Opening(target, messages, settings, True) as call:
            conn = await connect()
        if call is not None:
            _end_with(conn, call)
        return conn

    return observed


def _end_with(conn: Connected, call: CallInfo) -> None:
    """The call ends when the committed stream does."""
    inner_done = conn.on_done

    def done(error: BaseException | None, completed: bool) -> None:
        inner_done(error, completed)
        response = conn.stream._state.response if completed else None
        if response is not None:
            response = response.model_copy(update={"attempts": list(conn.attempts)})
        _finish_call(call, response=response, error=error, completed=completed)

    conn.on_done = done


def run_in_slot(position: int | None, retry_no: int, attempt: Callable[[T], Any], arg: T) -> Any:
    """Run a plan's attempt with its place in the call known to the concrete model it calls.
    (Async attempts return their coroutine; `arun_in_slot` awaits it inside the slot.)"""
    outer_position, _ = _slot.get()
    token = _slot.set((outer_position if position is None else position, retry_no))
    try:
        return attempt(arg)
    finally:
        _slot.reset(token)


async def arun_in_slot(position: int | None, retry_no: int, attempt: Callable[[T], Awaitable[Any]], arg: T) -> Any:
    outer_position, _ = _slot.get()
    token = _slot.set((outer_position if position is None else position, retry_no))
    try:
        return await attempt(arg)
    finally:
        _slot.reset(token)


def set_hedge_position(position: int) -> None:
    """A hedge contender runs in its own task: its attempts are at `position` (0 primary, 1 backup)."""
    _slot.set((position, 0))


# ---------------------------------------------------------------------------------- helpers


def _outcome(response: ChatResponse | None, error: BaseException | None, completed: bool) -> str:
    if error is not None:
        # asyncio's CancelledError, trio's Cancelled: by name, so a sync call imports neither.
        cancelled = type(error).__name__ in ("CancelledError", "Cancelled")
        return "cancelled" if cancelled or isinstance(error, (KeyboardInterrupt, GeneratorExit)) else "error"
    if response is not None:
        return "ok"
    return "ok" if completed else "closed"


def _response_id(response: ChatResponse) -> str | None:
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
