"""The deadline of the attempt in progress, handed from the resilience layer to the I/O driver.

It travels in a context variable of its own, never through the caller's ``timeout`` setting, so a
deadline can only *shorten* each phase of an HTTP timeout (connect, read, write, pool) — the
minimum of the two — and never widen one the caller, the model or a user's ``httpx`` client set.
Times are `time.monotonic` instants: the driver and this channel share the real clock even when
a test injects a fake clock into the planner (it converts "seconds left" on the way in).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar

import httpx

__all__ = ["attempt_end", "attempt_ends_in", "clamp_timeout", "remaining"]

_MIN_PHASE = 0.001
"""httpx treats 0 as "no time at all"; a phase with nothing left still gets a sliver, and fails at once."""

_ATTEMPT_END: ContextVar[float | None] = ContextVar("modelmix_attempt_end", default=None)


def attempt_end() -> float | None:
    """The `time.monotonic` instant by which the current attempt must end, or None (unbounded)."""
    return _ATTEMPT_END.get()


def remaining() -> float:
    """Seconds left for the current attempt (``inf`` when no deadline is in force)."""
    end = _ATTEMPT_END.get()
    return math.inf if end is None else end - time.monotonic()


@contextlib.contextmanager
def attempt_ends_in(seconds: float | None) -> Iterator[None]:
    """Bound every network call made in this block to `seconds` from now (None: no new bound).

    Nested blocks keep the earlier of the two ends: an inner wrapper can never extend an outer one.
    """
    end = _ATTEMPT_END.get()
    if seconds is not None and math.isfinite(seconds):
        proposed = time.monotonic() + max(seconds, 0.0)
        end = proposed if end is None else min(end, proposed)
    token = _ATTEMPT_END.set(end)
    try:
        yield
    finally:
        _ATTEMPT_END.reset(token)


def clamp_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """`timeout` with each phase cut to the time the current attempt has left."""
    left = remaining()
    if math.isinf(left):
        return timeout
    cap = max(left, _MIN_PHASE)

    def phase(value: float | None) -> float:
        return cap if value is None else min(value, cap)

    return httpx.Timeout(
        connect=phase(timeout.connect), read=phase(timeout.read), write=phase(timeout.write), pool=phase(timeout.pool)
    )
