"""The deadline of the attempt in progress, handed from the resilience layer to the I/O driver.

It travels in a context variable of its own, never through the caller's ``timeout`` setting, so a
deadline can only *shorten* each phase of an HTTP timeout (connect, read, write, pool) — the
minimum of the two — and never widen one the caller, the model or a user's ``httpx`` client set.
Times are `time.monotonic` instants: the driver and this channel share the real clock even when
a test injects a fake clock into the planner (it converts "seconds left" on the way in).
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar, Token

import httpx

__all__ = [
    "attempt_end",
    "attempt_ends_in",
    "bound_attempt",
    "clamp_phases",
    "clamp_timeout",
    "headers_read_limit",
    "headers_within",
    "remaining",
    "unbound_attempt",
]

_MIN_PHASE = 0.001
"""httpx treats 0 as "no time at all"; a phase with nothing left still gets a sliver, and fails at once."""

_ATTEMPT_END: ContextVar[float | None] = ContextVar("modelmix_attempt_end", default=None)
_HEADERS_END: ContextVar[float | None] = ContextVar("modelmix_headers_end", default=None)


def attempt_end() -> float | None:
    """The `time.monotonic` instant by which the current attempt must end, or None (unbounded)."""
    return _ATTEMPT_END.get()


def remaining() -> float:
    """Seconds left for the current attempt (``inf`` when no deadline is in force)."""
    end = _ATTEMPT_END.get()
    return math.inf if end is None else end - time.monotonic()


class attempt_ends_in:
    """Bound every network call made in this block to `seconds` from now (None: no new bound).

    Nested blocks keep the earlier of the two ends: an inner wrapper can never extend an outer one.
    (A class rather than a generator-based context manager: it is entered on every attempt.)
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._token: Token[float | None] | None = None

    def __enter__(self) -> None:
        self._token = bound_attempt(self._seconds)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _ATTEMPT_END.reset(self._token)
            self._token = None


def bound_attempt(seconds: float | None) -> Token[float | None]:
    """`attempt_ends_in` as a call, for a loop that enters it on every attempt: undo it with
    `unbound_attempt` (the token), in a ``finally``."""
    end = _ATTEMPT_END.get()
    if seconds is not None and math.isfinite(seconds):
        proposed = time.monotonic() + max(seconds, 0.0)
        end = proposed if end is None else min(end, proposed)
    return _ATTEMPT_END.set(end)


def unbound_attempt(token: Token[float | None]) -> None:
    _ATTEMPT_END.reset(token)


def clamp_phases(timeout: httpx.Timeout) -> dict[str, float | None]:
    """`timeout`'s phases as httpx's request extension wants them, each cut to the time the
    current attempt has left."""
    left = remaining()
    if math.isinf(left):
        return timeout.as_dict()
    cap = max(left, _MIN_PHASE)
    return {
        "connect": cap if timeout.connect is None else min(timeout.connect, cap),
        "read": cap if timeout.read is None else min(timeout.read, cap),
        "write": cap if timeout.write is None else min(timeout.write, cap),
        "pool": cap if timeout.pool is None else min(timeout.pool, cap),
    }


def clamp_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """`timeout` with each phase cut to the time the current attempt has left."""
    return httpx.Timeout(**clamp_phases(timeout))


class headers_within:
    """The response headers of a request sent in this block must arrive within `seconds` (a
    stream's first-token limit: no headers, no first token). Only the wait for the headers is
    cut; the body's reads keep the request's own read timeout."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._token: Token[float | None] | None = None

    def __enter__(self) -> None:
        end = _HEADERS_END.get()
        if math.isfinite(self._seconds):
            proposed = time.monotonic() + max(self._seconds, 0.0)
            end = proposed if end is None else min(end, proposed)  # an inner block never extends
        self._token = _HEADERS_END.set(end)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _HEADERS_END.reset(self._token)
            self._token = None


def headers_read_limit(read: float | None) -> float | None:
    """The read timeout for the wait for headers when `headers_within` cuts `read`, else None."""
    end = _HEADERS_END.get()
    if end is None:
        return None
    left = max(end - time.monotonic(), _MIN_PHASE)
    return left if read is None or left < read else None
