"""Streams that only reach the caller once committed.

A wrapper opens an inner stream and reads it up to the first content event (the commit point)
before handing anything to the caller; a failure before that is retried or falls back invisibly.
After it, events pass straight through under an idle timer and the deadline, and the inner
stream's own commit tracking turns failures into `StreamInterruptedError` with the partial output.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import anyio

from .._events import CONTENT_EVENTS, StreamEvent
from .._exceptions import ModelMixError, StreamStalledError
from .._response import Attempt, ChatResponse, with_attempts
from .._streaming import AsyncStream, Stream, _StreamState
from .._watchdog import Watch
from ._clock import Deadline, deadline_error
from ._planner import Call, CallPlan
from ._read_timer import ReadTimer, read_timer_available

__all__ = [
    "Connected",
    "GuardedAsyncStream",
    "GuardedStream",
    "ReadLimit",
    "apull_to_commit",
    "first_token_limit",
    "pull_to_commit",
]

DoneHook = Callable[[BaseException | None, bool], None]
"""Called once when a committed stream ends: (error or None, read to the end?)."""


def _no_hook(error: BaseException | None, completed: bool) -> None:
    return None


class _NoParser:
    """Stands in until the inner stream is open; never fed."""

    done = False
    model = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:  # pragma: no cover - never called
        return []

    def flush(self) -> list[StreamEvent]:  # pragma: no cover - never called
        return []


@dataclass
class Connected:
    """An inner stream read up to its commit point."""

    stream: Stream | AsyncStream
    iterator: Iterator[StreamEvent] | AsyncIterator[StreamEvent]
    buffered: list[StreamEvent]
    attempts: list[Attempt]
    deadline: Deadline
    idle_timeout: float | None = None
    on_done: DoneHook = field(default=_no_hook)
    _done: bool = False

    def finish(self, error: BaseException | None, completed: bool) -> None:
        if not self._done:
            self._done = True
            self.on_done(error, completed)


def stream_attempts(stream: Stream | AsyncStream) -> list[Attempt] | None:
    """The attempts a wrapped stream recorded, or None for a plain provider stream."""
    return list(stream.attempts) if isinstance(stream, (GuardedStream, GuardedAsyncStream)) else None


async def apull_to_commit(
    stream: AsyncStream, limit: float
) -> tuple[AsyncIterator[StreamEvent], list[StreamEvent]] | None:
    """Open `stream` and read until its first content event (or its end); None if `limit` seconds ran out."""
    with anyio.move_on_after(limit):
        await stream.__aenter__()
        iterator = aiter(stream)
        buffered: list[StreamEvent] = []
        while True:
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                break
            buffered.append(event)
            if isinstance(event, CONTENT_EVENTS):
                break
        return iterator, buffered
    return None


def pull_to_commit(stream: Stream) -> tuple[Iterator[StreamEvent], list[StreamEvent]]:
    stream.__enter__()
    iterator = iter(stream)
    buffered: list[StreamEvent] = []
    for event in iterator:
        buffered.append(event)
        if isinstance(event, CONTENT_EVENTS):
            break
    return iterator, buffered


async def aclose_quietly(stream: AsyncStream) -> None:
    """Close a stream even inside a cancelled scope (the connection must go back to the pool)."""
    with anyio.CancelScope(shield=True):
        await stream.aclose()


def _stall_error(stream: Stream | AsyncStream, idle: float, provider: str, model: str) -> StreamStalledError:
    message = f"no stream event within the {idle:g} s idle timeout after content had started"
    return StreamStalledError(
        message, partial_text=stream.text, provider=provider, model=model, phase="post_commit_stream"
    )


class _GuardedMixin:
    """What the sync and async guarded streams share: the state of one opening and its end."""

    _conn: Connected | None
    _final: ChatResponse | None
    _state: _StreamState
    _closed: bool

    def _setup(self, provider: str, model: str) -> None:
        self._state = _StreamState(_NoParser(), provider=provider, model=model)
        self._conn = None
        self._final = None
        self._closed = False

    def _opened(self, conn: Connected) -> Connected:
        self._conn = conn
        # committed / text / response now read the inner stream's state.
        self._state = conn.stream._state
        return conn

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise ModelMixError(f"this stream was closed; start a new one with model.{method}(...)")

    def _closing(self) -> Connected | None:
        """Mark the stream closed; the connection to close, the first time only."""
        if self._closed:
            return None
        self._closed = True
        if self._conn is not None:
            self._conn.finish(None, False)
        return self._conn

    @contextlib.contextmanager
    def _reporting_failures(self) -> Iterator[None]:
        """A failure while reading carries every attempt and tells the plan this connection failed."""
        try:
            yield
        except ModelMixError as exc:
            if self._conn is not None:
                exc.attempts = list(self._conn.attempts)
                self._conn.finish(exc, False)
            raise

    @property
    def attempts(self) -> list[Attempt]:
        """Every attempt made to open this stream (empty until it is open)."""
        return list(self._conn.attempts) if self._conn is not None else []

    @property
    def response(self) -> ChatResponse:
        if self._final is None:
            inner = self._state.require_response()
            attempts = self.attempts
            if attempts and attempts[-1].error is None and attempts[-1].usage is None:
                # The answering attempt was recorded at the commit point, before its usage arrived.
                attempts[-1] = attempts[-1].model_copy(update={"usage": inner.usage, "cost": inner.cost})
            self._final = with_attempts(inner, attempts)
        return self._final


class GuardedAsyncStream(_GuardedMixin, AsyncStream):
    """An `AsyncStream` whose opening is a whole retry / fallback / hedge procedure."""

    def __init__(self, connect: Callable[[], Awaitable[Connected]], *, provider: str, model: str) -> None:
        self._connect = connect
        self._iterator: AsyncIterator[StreamEvent] | None = None
        self._text_iterators: list[AsyncIterator[str]] = []
        self._setup(provider, model)

    async def __aenter__(self) -> GuardedAsyncStream:
        await self._connect_once()
        return self

    async def _connect_once(self) -> Connected:
        if self._conn is not None:
            return self._conn
        self._check_open("astream")
        return self._opened(await self._connect())

    async def _release(self) -> None:
        conn = self._closing()
        if conn is not None:
            assert isinstance(conn.stream, AsyncStream)
            await aclose_quietly(conn.stream)

    async def _events(self) -> AsyncIterator[StreamEvent]:
        try:
            with self._reporting_failures():
                conn = await self._connect_once()
                iterator = conn.iterator
                assert isinstance(iterator, AsyncIterator)
                for buffered in _drain(conn.buffered):
                    yield buffered
                if read_timer_available():
                    async for event in self._timed(conn, iterator):
                        yield event
                else:
                    while True:
                        scoped = await _next_within_limits(conn, iterator, self._state)
                        if scoped is None:
                            break
                        yield scoped
                conn.finish(None, True)
        finally:
            await self._release()

    async def _timed(self, conn: Connected, iterator: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """The committed events under one `ReadTimer` (asyncio): O(1) per event."""
        state = self._state
        idle = conn.idle_timeout if conn.idle_timeout is not None else math.inf

        def expired(why: str) -> BaseException:
            if why == "idle":
                return _stall_error(conn.stream, idle, state.provider, state.model_name)
            return deadline_error(conn.deadline, "stream")

        timer = ReadTimer(idle, conn.deadline.own_remaining(), expired)
        try:
            while True:
                try:
                    event = await timer.next(iterator)
                except StopAsyncIteration:
                    return
                yield event
        finally:
            timer.close()


class GuardedStream(_GuardedMixin, Stream):
    """The sync counterpart. A blocked sync read can't be cancelled, so the first-token, idle and
    deadline limits are handed down to the provider stream, whose reads a watch interrupts at
    the limit (see `modelmix._watchdog`): nothing is checked per event."""

    def __init__(self, connect: Callable[[], Connected], *, provider: str, model: str) -> None:
        self._connect = connect
        self._iterator: Iterator[StreamEvent] | None = None
        self.inherited: list[ReadLimit] = []
        """Read limits an enclosing wrapper set: every stream this one opens gets them."""
        self._setup(provider, model)

    def _limit_reads(self, limit: ReadLimit) -> None:
        self.inherited.append(limit)
        if self._conn is not None:
            self._conn.stream._limit_reads(limit)  # type: ignore[union-attr]

    def __enter__(self) -> GuardedStream:
        self._connect_once()
        return self

    def _connect_once(self) -> Connected:
        if self._conn is not None:
            return self._conn
        self._check_open("stream")
        return self._opened(self._connect())

    def _release(self) -> None:
        conn = self._closing()
        if conn is not None:
            assert isinstance(conn.stream, Stream)
            conn.stream.close()

    def _events(self) -> Iterator[StreamEvent]:
        try:
            with self._reporting_failures():
                conn = self._connect_once()
                iterator = conn.iterator
                assert isinstance(iterator, Iterator)
                yield from _drain(conn.buffered)
                inner = conn.stream
                assert isinstance(inner, Stream)
                inner._limit_reads(_committed_limits(conn, self._state))
                yield from iterator
                conn.finish(None, True)
        finally:
            self._release()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and getattr(self, "_conn", None) is not None:
            self._release()


ReadLimit = Callable[[Watch], None]
"""Puts one time limit (with the error it raises) on a sync stream's reads."""


def first_token_limit(call: Call, plan: CallPlan) -> ReadLimit:
    """An attempt's limits until its first content event: the first-token timeout (or its share
    of a chain's time) and the attempt's deadline — what async enforces with cancel scopes."""
    now = time.monotonic()
    first_token = min(call.first_token, call.timer)

    def limit(watch: Watch) -> None:
        if math.isfinite(first_token):
            watch.first_token_at(now + first_token, lambda: plan.no_first_token(call))
        if math.isfinite(call.timer):
            watch.deadline_at(now + call.timer, lambda: plan.attempt_timed_out(call))

    return limit


def _committed_limits(conn: Connected, state: _StreamState) -> ReadLimit:
    """After the commit point: the idle timeout between events and the call's deadline."""
    idle = conn.idle_timeout
    left = conn.deadline.own_remaining()
    now = time.monotonic()

    def limit(watch: Watch) -> None:
        if idle is not None:
            watch.idle_limit(idle, lambda: _stall_error(conn.stream, idle, state.provider, state.model_name))
        if math.isfinite(left):
            watch.deadline_at(now + max(left, 0.0), lambda: deadline_error(conn.deadline, "stream"))

    return limit


def _drain(buffered: list[StreamEvent]) -> Iterator[StreamEvent]:
    """The events read while looking for the commit point, handed out once."""
    while buffered:
        yield buffered.pop(0)


async def _next_within_limits(
    conn: Connected, iterator: AsyncIterator[StreamEvent], state: _StreamState
) -> StreamEvent | None:
    """The next event, or None at the end; raises when the idle timeout or the deadline passes first."""
    left = conn.deadline.own_remaining()
    idle = conn.idle_timeout if conn.idle_timeout is not None else math.inf
    with anyio.move_on_after(min(idle, max(left, 0.0))):
        try:
            return await anext(iterator)
        except StopAsyncIteration:
            return None
    raise (
        _stall_error(conn.stream, idle, state.provider, state.model_name)
        if idle < left
        else deadline_error(conn.deadline, "stream")
    )
