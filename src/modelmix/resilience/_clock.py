"""Time, injectable: a `Clock` gives "now" and sleeps, and a `Deadline` is a point on one clock.

Every wait the resilience layer computes goes through a clock, so tests can inject one that
advances instantly instead of really sleeping.
"""

from __future__ import annotations

import contextvars
import math
import time
from dataclasses import dataclass

import anyio

from .._call_deadline import bound_attempt, unbound_attempt
from .._exceptions import DeadlineExceededError

__all__ = ["AttemptScope", "Clock", "Deadline", "deadline_error", "effective_deadline", "using_deadline"]


class Clock:
    """The real clock (monotonic). Subclass and override all three methods to fake time."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        # Always a checkpoint, so a zero-second retry still lets cancellation through.
        await anyio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = Clock()


@dataclass(frozen=True, slots=True)
class Deadline:
    """An instant on `clock` by which a whole call (attempts, waits, fallbacks) must be done.

    `at` is the tightest limit, the caller's cancel scope included; `own_at` is the part modelmix
    enforces itself (``deadline=`` and enclosing wrappers). The caller's scope is never raced with a
    timer of ours: when it is the tighter limit, the caller's own cancellation ends the call, so a
    caller's ``move_on_after`` behaves exactly as it would without modelmix.
    """

    at: float
    clock: Clock
    seconds: float | None = None
    """The budget it was created with, for error messages."""
    own_at: float | None = None
    """modelmix's own limit; None: the same as `at`."""

    def remaining(self) -> float:
        """Seconds until the tightest limit: for deciding whether a wait or another attempt fits."""
        return self.at - self.clock.now()

    def own_remaining(self) -> float:
        """Seconds until modelmix's own limit: for timers and `DeadlineExceededError` (inf if none)."""
        return (self.at if self.own_at is None else self.own_at) - self.clock.now()

    def narrowed(self, seconds: float | None) -> Deadline:
        """This deadline, or `seconds` from now if that is sooner (a chain member's own deadline)."""
        if seconds is None:
            return self
        now = self.clock.now()
        at = min(self.at, now + seconds)
        own = min(self.at if self.own_at is None else self.own_at, now + seconds)
        return Deadline(at=at, clock=self.clock, seconds=None if math.isinf(at) else at - now, own_at=own)


_AMBIENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("modelmix_deadline", default=None)


class using_deadline:
    """Make `deadline` the ambient deadline for inner wrappers called from this block.

    (A class rather than a generator-based context manager: it is entered on every attempt.)
    """

    __slots__ = ("_deadline", "_token")

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._token: contextvars.Token[Deadline | None] | None = None

    def __enter__(self) -> None:
        self._token = _AMBIENT.set(self._deadline)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _AMBIENT.reset(self._token)
            self._token = None


class AttemptScope:
    """What an attempt runs under: `deadline` is the ambient deadline of inner wrappers, and
    every network call ends within `seconds`. `using_deadline` and `attempt_ends_in` in one, as
    two plain calls (`enter`, `leave`), because the planner's loops pass here on every attempt."""

    __slots__ = ("_ambient", "_bound")

    def __init__(self, deadline: Deadline, seconds: float | None) -> None:
        self._ambient = _AMBIENT.set(deadline)
        self._bound = bound_attempt(seconds)

    def leave(self) -> None:
        unbound_attempt(self._bound)
        _AMBIENT.reset(self._ambient)


def effective_deadline(clock: Clock, seconds: float | None, *, in_async: bool) -> Deadline:
    """min(own `seconds`, the enclosing wrapper's deadline, the caller's anyio cancel scope)."""
    now = clock.now()
    own = math.inf if seconds is None else now + seconds
    at = own
    ambient = _AMBIENT.get()
    if ambient is not None:
        own = min(own, now + ambient.own_remaining())
        at = min(own, now + ambient.remaining())
    if in_async:
        scope_deadline = anyio.current_effective_deadline()
        if not math.isinf(scope_deadline):
            at = min(at, now + (scope_deadline - anyio.current_time()))
    return Deadline(at=at, clock=clock, seconds=None if math.isinf(at) else at - now, own_at=own)


def deadline_error(deadline: Deadline, phase: str) -> DeadlineExceededError:
    """The error for a call whose deadline passed (`phase`: where it was at the time)."""
    seconds = f"{deadline.seconds:.2f} s " if deadline.seconds is not None else ""
    return DeadlineExceededError(
        f"the call's {seconds}deadline passed ({phase})", deadline=deadline.seconds, phase=phase
    )
