"""`FakeClock`: time that passes only when something waits on it."""

from __future__ import annotations

import anyio.lowlevel

from ..resilience import Clock

__all__ = ["FakeClock"]


class FakeClock(Clock):
    """A clock for tests: ``now()`` starts at `start` and moves only when code sleeps on it
    (``sleep``/``asleep``, sync and async alike) or when the test calls `advance`. Retry
    backoff, server hints, breaker windows and fake latency then take no real time:

    ```python
    clock = FakeClock()
    model = mm.retrying(flaky, clock=clock)
    model.chat("hi")
    assert clock.slept == [0.5]      # every wait, in order
    ```

    Pass the same clock to the wrappers (``clock=``) and to the fakes (`FunctionModel`'s
    ``clock=``) so they share one timeline. `asleep` still yields to the event loop once, so
    cancellation and other tasks get their turn.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.slept: list[float] = []
        """Every wait asked for, in order (negative waits count as zero)."""

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping (a cooldown passing, a cache expiring...)."""
        self._now += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        self.slept.append(max(seconds, 0.0))
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now:g} waits={len(self.slept)}>"
