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
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._call_records import AttemptInfo, CallInfo, Hooks, RetryWait, address_of, attempt_slot, response_id_of
from ._exceptions import ModelMixError
from ._response import ChatResponse

if TYPE_CHECKING:
    from ._messages import MessagesInput
    from ._model import Model
    from ._streaming import AsyncStream, Stream, _StreamState
    from .resilience._streams import Connected

__all__ = [
    "ACTIVE",
    "AttemptInfo",
    "CallInfo",
    "Hooks",
    "RetryWait",
    "add_hooks",
    "address_of",
    "remove_hooks",
    "retry_wait",
]

logger = logging.getLogger("modelmix")

ACTIVE = False
"""True while at least one `Hooks` is registered: call sites read it before doing anything."""

_registered: tuple[Hooks, ...] = ()
_current: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("modelmix_call", default=None)

_METHODS = ("call_started", "request_sent", "first_chunk", "retry_wait", "attempt_finished", "call_finished")
_dispatch: dict[str, tuple[Callable[[Any], object], ...]] = dict.fromkeys(_METHODS, ())
"""Per hook method, the registered hooks' bound methods that override it: a method a hook leaves
as `Hooks`' no-op costs nothing per call (most hooks override two or three of the six)."""

T = TypeVar("T")


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
    _rebuild_dispatch()
    ACTIVE = True


def remove_hooks(hooks: Hooks) -> None:
    """Stop telling `hooks` about calls (calls in flight stop reporting to it too)."""
    global _registered, ACTIVE
    _registered = tuple(h for h in _registered if h is not hooks)
    _rebuild_dispatch()
    ACTIVE = bool(_registered)


def _rebuild_dispatch() -> None:
    global _dispatch
    _dispatch = {
        method: tuple(
            getattr(hooks, method)
            for hooks in _registered
            if getattr(type(hooks), method) is not getattr(Hooks, method)
        )
        for method in _METHODS
    }


def _emit(method: str, record: Any) -> None:
    for hook in _dispatch[method]:
        try:
            hook(record)
        except Exception:  # an observer's bug must not change the call's outcome
            logger.exception("modelmix hook %s.%s failed", type(getattr(hook, "__self__", hook)).__name__, method)


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


def retry_wait(seconds: float) -> None:
    """A plan driver is about to sleep `seconds` before a retry (called only while hooks are on).
    The attempt being retried is the one of the current call that failed last: the driver got
    its error just before (async contenders of a hedge share the call, but nothing awaits in
    between, so the other cannot end an attempt meanwhile)."""
    call = _current.get()
    if call is None:  # the call started before the hooks were registered
        return
    failed: AttemptInfo | None = None
    for attempt in call.attempts:
        if attempt.outcome == "error" and (failed is None or (attempt.ended or 0.0) >= (failed.ended or 0.0)):
            failed = attempt
    if failed is not None:  # else the model called sends no request modelmix sees (a custom Model)
        _emit("retry_wait", RetryWait(call, failed, seconds))


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

    __slots__ = ("attempt", "own", "state")

    def __init__(self, state: _StreamState) -> None:
        self.attempt: AttemptInfo | None = None
        self.own = False
        self.state = state

    def opening(
        self, model: Model, messages: MessagesInput, settings: Mapping[str, Any], parent: CallInfo | None
    ) -> None:
        call = parent
        if call is None:
            call = _start_call(model, messages, settings, streaming=True)
            self.own = True
        self.attempt = _start_attempt(call, model)

    def open_failed(self, error: BaseException) -> None:
        if _is_cancellation(error) and not self.own:
            # Often modelmix's own first-token limit cancelling the opening: the wrapper then
            # closes this stream while handling the error it raises for it (see `released`), and
            # the call's end closes whatever is left.
            return
        self.ended(None, error, completed=False)

    def first_chunk(self) -> None:
        if self.attempt is not None:
            self._note_response_id(self.attempt)
            _first_chunk(self.attempt)

    def released(self, state: _StreamState) -> None:
        error = state.failure
        if error is None and state.response is None:
            error = _closing_because()
        self.ended(state.response, error, completed=state.response is not None)

    def ended(self, response: ChatResponse | None, error: BaseException | None, *, completed: bool) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        self._note_response_id(attempt)
        _finish_attempt(attempt, response=response, error=error, completed=completed)
        if self.own:
            _finish_call(attempt.call, response=response, error=error, completed=completed)

    def _note_response_id(self, attempt: AttemptInfo) -> None:
        """The id the stream's events carried so far (parsers that know none have no `response_id`),
        or the body's, for a server that answered the stream request with one JSON body."""
        if attempt._streamed_id is not None:
            return
        state = self.state
        found = getattr(state.parser, "response_id", None)
        full = state.opened.full_response if state.opened is not None else None
        if found is None and full is not None:
            found = response_id_of(full)
        attempt._streamed_id = found


def observe_leaf_stream(
    stream: Stream | AsyncStream, model: Model, messages: MessagesInput, settings: Mapping[str, Any]
) -> None:
    """Make a concrete model's new stream report its attempt (called where the stream is built)."""
    from ._streaming import Stream

    parent = _current.get()
    observer = StreamObserver(stream._state)
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
    outer_position, _ = attempt_slot.get()
    token = attempt_slot.set((outer_position if position is None else position, retry_no))
    try:
        return attempt(arg)
    finally:
        attempt_slot.reset(token)


async def arun_in_slot(position: int | None, retry_no: int, attempt: Callable[[T], Awaitable[Any]], arg: T) -> Any:
    outer_position, _ = attempt_slot.get()
    token = attempt_slot.set((outer_position if position is None else position, retry_no))
    try:
        return await attempt(arg)
    finally:
        attempt_slot.reset(token)


def set_hedge_position(position: int) -> None:
    """A hedge contender runs in its own task: its attempts are at `position` (0 primary, 1 backup)."""
    attempt_slot.set((position, 0))


# ---------------------------------------------------------------------------------- helpers


def _closing_because() -> BaseException | None:
    """The failure a stream is being closed for, when modelmix closes it while handling one (a
    first-token timeout, a hedge contender cancelled): its attempt failed with that, it was not
    merely closed. A stream the caller closes is just closed."""
    handled = sys.exc_info()[1]
    if isinstance(handled, ModelMixError) or _is_cancellation(handled):
        return handled
    return None


def _is_cancellation(error: BaseException | None) -> bool:
    # asyncio's CancelledError, trio's Cancelled: by name, so a sync call imports neither.
    return type(error).__name__ in ("CancelledError", "Cancelled")


def _outcome(response: ChatResponse | None, error: BaseException | None, completed: bool) -> str:
    if error is not None:
        cancelled = _is_cancellation(error) or isinstance(error, (KeyboardInterrupt, GeneratorExit))
        return "cancelled" if cancelled else "error"
    if response is not None:
        return "ok"
    return "ok" if completed else "closed"
