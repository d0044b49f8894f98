"""The idle timeout and the deadline of a committed async stream, at O(1) per event on asyncio.

A cancel scope around every read costs several microseconds — more than decoding the event it
waits for. Instead one loop timer watches the stream: each wait for an event only records when it
started, and the timer, when it fires, either re-arms itself for the next possible expiry or —
if the reader has really been waiting for the whole idle timeout, or the deadline has passed —
cancels the waiting task. The cancellation is caught where the read was awaited, taken back
(``Task.uncancel``) and turned into the stream's own error, so no cancellation leaks; one that
someone else requested at the same moment still propagates.

Needs ``Task.uncancel`` (Python 3.11) and asyncio; elsewhere streams keep a scope per read.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

__all__ = ["AttemptTimer", "ReadTimer", "read_timer_available"]

Expiry = Literal["idle", "deadline"]


if sys.version_info >= (3, 11):

    def _uncancel(task: asyncio.Task[Any]) -> int:
        return task.uncancel()

    def _cancelling(task: asyncio.Task[Any]) -> int:
        return task.cancelling()

    def read_timer_available() -> bool:
        """True where `ReadTimer` works: asyncio on Python 3.11 or later."""
        try:
            asyncio.get_running_loop()  # raises under trio: no asyncio loop runs there
        except RuntimeError:
            return False
        return asyncio.current_task() is not None

else:  # pragma: no cover - Python 3.10 has no Task.uncancel

    def _uncancel(task: asyncio.Task[Any]) -> int:
        raise NotImplementedError

    def _cancelling(task: asyncio.Task[Any]) -> int:
        raise NotImplementedError

    def read_timer_available() -> bool:
        """True where `ReadTimer` works: asyncio on Python 3.11 or later."""
        return False


class ReadTimer:
    """Limits the waits of one task for the events of one stream."""

    __slots__ = ("_end", "_expired", "_handle", "_idle", "_loop", "_on_expiry", "_since", "_task")

    def __init__(self, idle: float, left: float, on_expiry: Callable[[Expiry], BaseException]) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        now = self._loop.time()
        self._idle = idle
        self._end = now + max(left, 0.0)
        self._since: float | None = None
        self._expired: Expiry | None = None
        self._on_expiry = on_expiry
        self._handle: asyncio.TimerHandle | None = None
        self._arm(min(self._end, now + idle))

    def _arm(self, when: float) -> None:
        self._handle = self._loop.call_at(when, self._check) if math.isfinite(when) else None

    def _check(self) -> None:
        if self._expired is not None:
            return  # already cancelled the wait; it has not resumed yet
        now = self._loop.time()
        since = self._since
        if since is None:
            # Not waiting: time spent in the caller's hands is not idle time. A passed deadline
            # is noticed when the caller asks for the next event.
            if now < self._end:
                self._arm(min(self._end, now + self._idle))
            else:
                self._handle = None
            return
        if now >= self._end or now - since >= self._idle:
            self._expired = "deadline" if now >= self._end else "idle"
            self.close()
            self._task.cancel()
            return
        self._arm(min(self._end, since + self._idle))

    async def next(self, iterator: AsyncIterator[Any]) -> Any:
        """The next item of `iterator`, or the stream's error when a limit passes first."""
        loop = self._loop
        started = loop.time()
        if started >= self._end:
            raise self._on_expiry("deadline")
        if self._handle is None:
            self._arm(min(self._end, started + self._idle))
        self._since = started
        try:
            return await anext(iterator)
        except asyncio.CancelledError:
            expired = self._expired
            if expired is None:
                raise
            self._expired = None
            # Take back our own cancellation; one requested by anyone else still stands.
            if _uncancel(self._task) > 0:
                raise
            raise self._on_expiry(expired) from None
        finally:
            self._since = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class AttemptTimer:
    """The time limit of one async attempt as one loop timer, where `read_timer_available`: a
    cancel scope per attempt costs more than the planner's whole bookkeeping for it.

    When `seconds` pass the task is cancelled once; the attempt unwinds from wherever it waits
    (one cancellation, not a scope that cancels every later await, so its cleanup runs as usual)
    and the driver, catching the `CancelledError`, asks `took_back` whether it was this timer's
    alone and so a timeout rather than the caller's cancellation.
    """

    __slots__ = ("_cancelling", "_handle", "_task", "fired")

    def __init__(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = _cancelling(task)
        self.fired = False
        self._handle: asyncio.TimerHandle | None = (
            loop.call_at(loop.time() + max(seconds, 0.0), self._fire) if math.isfinite(seconds) else None
        )

    def _fire(self) -> None:
        self._handle = None
        self.fired = True
        self._task.cancel()

    def took_back(self) -> bool:
        """After a `CancelledError`: True when this timer caused it and nobody else asked for a
        cancellation meanwhile (it is then taken back and the attempt timed out)."""
        if not self.fired:
            return False
        self.fired = False
        return _uncancel(self._task) <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
