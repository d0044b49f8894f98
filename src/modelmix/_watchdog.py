"""Time limits for blocking (sync) reads.

httpx's read timeout is per read: a server that trickles one byte a second, or sends keep-alive
comments forever, never trips it. Async code races each read with a cancel scope; sync code has
no such thing, so a limit must act from outside the reading thread. One shared daemon thread
keeps a heap of due times and, when a `Watch` passes its limit, shuts the watched socket down:
the blocked read then returns at once (end of file or an error) and the reader, seeing
`Watch.fired`, raises the error that names the limit instead.

A watch holds up to three limits — a fixed deadline, a first-token limit that ends with the
first content event, and an idle limit that only runs while the reader is waiting for its next
event — each with the function that builds its error. Moving a limit later is a plain attribute
write (the timer thread re-checks the watch when an old due time comes up), so the per-event
cost on a healthy stream is a clock read.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any

import anyio

__all__ = [
    "Alarm",
    "Watch",
    "aread_past_the_end",
    "catching_responses",
    "read_past_the_end",
    "response_sent",
    "socket_of",
]

MakeError = Callable[[], BaseException]
_COMPACT_AFTER = 256
"""Stopped watches tolerated in the timer's heap before it is compacted."""
_Limit = tuple[float, MakeError] | None


class Watch:
    """The limits of one sync read sequence, and how to interrupt it."""

    __slots__ = ("_deadline", "_first_token", "_idle", "_idle_from", "_interrupt", "_lock", "_scheduled", "fired")

    def __init__(self) -> None:
        self._deadline: _Limit = None
        self._first_token: _Limit = None
        self._idle: _Limit = None
        self._idle_from: float | None = None
        self._interrupt: Callable[[], None] | None = None
        self._scheduled = math.inf
        self._lock = threading.Lock()
        self.fired: MakeError | None = None
        """Set (to the error's builder) when a limit passed and the read was interrupted."""

    # ------------------------------------------------------------------ limits (any thread)

    def deadline_at(self, at: float, error: MakeError) -> None:
        """End the reads at the `time.monotonic` instant `at` (the earliest one given wins)."""
        if self._deadline is None or at < self._deadline[0]:
            self._deadline = (at, error)
            self._reschedule()

    def first_token_at(self, at: float, error: MakeError) -> None:
        """End the reads at `at` unless content arrived first (see `content_arrived`)."""
        if self._first_token is None or at < self._first_token[0]:
            self._first_token = (at, error)
            self._reschedule()

    def idle_limit(self, seconds: float, error: MakeError) -> None:
        """End the reads when the reader waits longer than `seconds` for one event."""
        if self._idle is None or seconds < self._idle[0]:
            self._idle = (seconds, error)
            self._reschedule()

    def content_arrived(self) -> None:
        self._first_token = None

    def waiting(self) -> None:
        """The reader starts waiting for its next event (the idle limit runs from now)."""
        if self._idle is not None:
            self._idle_from = time.monotonic()
            # Nothing to schedule before the read can be interrupted (no socket: a mock transport).
            if self._interrupt is not None and self._idle_from + self._idle[0] < self._scheduled:
                self._reschedule()

    def not_waiting(self) -> None:
        self._idle_from = None

    # ----------------------------------------------------------------------------- the read

    def watch(self, interrupt: Callable[[], None]) -> None:
        """Start interrupting with `interrupt` (a read may now block)."""
        self._interrupt = interrupt
        self._reschedule()

    def stop(self) -> None:
        """No more reads: the timer thread forgets this watch."""
        with self._lock:
            scheduled = self._interrupt is not None and math.isfinite(self._scheduled)
            self._interrupt = None
            # The heap may hold this watch until a far deadline: keep nothing alive through it.
            self._deadline = self._first_token = self._idle = None
        if scheduled:
            _TIMER.forget()

    def due(self) -> tuple[float, MakeError | None]:
        """The earliest limit in force, and its error builder."""
        best: tuple[float, MakeError | None] = (math.inf, None)
        for limit in (self._deadline, self._first_token):
            if limit is not None and limit[0] < best[0]:
                best = limit
        idle, started = self._idle, self._idle_from
        if idle is not None and started is not None and started + idle[0] < best[0]:
            best = (started + idle[0], idle[1])
        return best

    def _reschedule(self) -> None:
        with self._lock:
            if self._interrupt is None or self.fired is not None:
                return
            at, _ = self.due()
            if at < self._scheduled:
                self._scheduled = at
                _TIMER.schedule(at, self)

    def _expire(self, now: float) -> None:
        """Called by the timer thread at a due time this watch asked for."""
        with self._lock:
            interrupt = self._interrupt
            if interrupt is None or self.fired is not None:
                return
            at, error = self.due()
            if error is None or at > now:
                # Moved later (an event arrived): look again then.
                self._scheduled = at
                if math.isfinite(at):
                    _TIMER.schedule(at, self)
                return
            self._scheduled = math.inf
            self.fired = error
        interrupt()


class Alarm:
    """One fixed deadline on a blocking read: `interrupt` runs once if `at` (a `time.monotonic`
    instant) comes before `stop()`. A `Watch` with nothing to move for the price of a heap entry,
    which a non-streamed body (read on every call) can afford."""

    __slots__ = ("_interrupt", "fired")

    def __init__(self, at: float, interrupt: Callable[[], None]) -> None:
        self._interrupt: Callable[[], None] | None = interrupt
        self.fired = False
        _TIMER.schedule(at, self)

    def stop(self) -> None:
        with _TIMER._lock:
            if self._interrupt is not None:
                self._interrupt = None
                _TIMER._forget_locked()

    def _expire(self, now: float) -> None:
        # Under the timer's lock, so a read that just finished (and whose connection may already be
        # back in the pool) is never interrupted after `stop()` returned.
        with _TIMER._lock:
            interrupt, self._interrupt = self._interrupt, None
            if interrupt is None:
                return
            self.fired = True
            interrupt()


def socket_of(response: Any) -> Callable[[], None] | None:
    """A function that makes `response`'s blocked reads return at once, if its socket is reachable."""
    network_stream = getattr(response, "extensions", {}).get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if not isinstance(sock, socket.socket):
        return None

    def interrupt() -> None:
        # shutdown, not close: a close from another thread does not wake a blocked recv on Linux,
        # and the reading thread still owns the socket and closes it itself. The plain socket's
        # shutdown even for TLS: SSLSocket.shutdown would also drop the TLS state under the reader.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    return interrupt


class _Timer:
    """The shared timer thread: a heap of (due time, watch), started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch | Alarm]] = []
        self._order = itertools.count()
        # A plain lock for the per-call paths (entered from C), the condition only to wake the thread.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopped = 0

    def schedule(self, at: float, watch: Watch | Alarm) -> None:
        with self._lock:
            heapq.heappush(self._heap, (at, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modelmix-read-limits", daemon=True)
                self._thread.start()
            if self._heap[0][2] is watch:
                self._wakeup.notify()

    def forget(self) -> None:
        """A scheduled watch stopped: drop stopped watches once they are most of the heap, so
        calls that end long before their deadline don't pile up until it."""
        with self._lock:
            self._forget_locked()

    def _forget_locked(self) -> None:
        self._stopped += 1
        if self._stopped > _COMPACT_AFTER and self._stopped * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if entry[2]._interrupt is not None]
            heapq.heapify(self._heap)
            self._stopped = 0

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap:
                    self._wakeup.wait()
                at = self._heap[0][0]
                now = time.monotonic()
                if at > now:
                    self._wakeup.wait(at - now)
                    continue
                _, _, watch = heapq.heappop(self._heap)
            watch._expire(time.monotonic())


_TIMER = _Timer()


_RESPONSES: ContextVar[list[Any] | None] = ContextVar("modelmix_opened_responses", default=None)


class catching_responses:
    """Collect the responses the driver sends in this block (a sync stream finds its socket so)."""

    __slots__ = ("_token", "responses")

    def __init__(self) -> None:
        self.responses: list[Any] = []
        self._token: Token[list[Any] | None] | None = None

    def __enter__(self) -> catching_responses:
        self._token = _RESPONSES.set(self.responses)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _RESPONSES.reset(self._token)


def response_sent(response: Any) -> None:
    """The driver got `response`'s headers: hand it to a stream opening in this context, if any."""
    sink = _RESPONSES.get()
    if sink is not None:
        sink.append(response)


_PAST_THE_END_GRACE = 0.1
"""Seconds a complete stream may spend reading what follows its terminator (usually the end of
the chunked body, already buffered). Reading it lets the connection go back to the pool; a server
that keeps the connection open after the answer costs that connection, never the caller's time."""


class _Enough(Exception):
    """The grace after the terminator passed."""


def _enough() -> BaseException:
    return _Enough()


def read_past_the_end(chunks: Iterator[Any], watch: Watch) -> None:
    """Read what follows the terminator for a moment: the answer is complete whatever happens."""
    watch.deadline_at(time.monotonic() + _PAST_THE_END_GRACE, _enough)
    # A failure after the terminator (the grace passed, a reset) only costs the connection.
    with contextlib.suppress(Exception):
        for _rest in chunks:
            pass


async def aread_past_the_end(chunks: AsyncIterator[Any]) -> None:
    """Async `read_past_the_end`."""
    with anyio.move_on_after(_PAST_THE_END_GRACE), contextlib.suppress(Exception):
        async for _rest in chunks:
            pass
