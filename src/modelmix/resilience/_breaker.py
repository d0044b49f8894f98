"""Circuit breakers: a sans-I/O state machine per (endpoint, model).

The breaker never reads the time itself: every method takes ``now`` from the caller's clock, so
tests drive it through hours of states without sleeping.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from .._exceptions import CircuitOpenError, ConfigurationError
from ._faults import BreakerOutcome, fault_of

__all__ = ["BreakerConfig", "BreakerSnapshot", "BreakerState", "CircuitBreaker", "Outcome", "classify"]

logger = logging.getLogger("modelmix")

Outcome = BreakerOutcome


class BreakerState(str, enum.Enum):
    """Where a circuit breaker stands: closed (calls flow), open (calls refused until the cooldown
    ends), half-open (one probe allowed), misconfigured (after an auth or not-found failure: open
    for a longer cooldown, and never picked for a panic-mode probe)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    MISCONFIGURED = "misconfigured"
    """Open because of a 401/403/404/TLS failure: a configuration problem, not an outage."""


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds; the defaults are listed in the deadlines and breakers guide."""

    window: int = 100
    """Calls whose outcomes the failure rate is computed over."""
    min_calls: int = 50
    """No rate-based opening before this many calls are in the window: over 20 calls an endpoint
    failing 37 % of the time shows 50 % failures one check in nine, over 50 calls one in thirty."""
    failure_rate: float = 0.5
    consecutive_failures: int = 10
    """Failures in a row that open the circuit at once (a dead endpoint, before `min_calls`).
    Five in a row happen every ~200 calls at a 37 % failure rate; ten, every ~30,000."""
    open_base: float = 10.0
    """Seconds open the first time; × times opened after that (one opening is forgotten per
    `min_calls` successful calls)."""
    open_cap: float = 300.0
    probe_failures: int = 3
    """Half-open: probes that must fail in a row before the circuit re-opens (the first success
    closes it), so an endpoint that answers most calls isn't shut out by one unlucky probe."""
    probe_timeout: float = 120.0
    """Seconds a probe may stay unanswered before another is let through: a probe whose outcome
    never arrives (a stream opened and abandoned unclosed) must not keep the endpoint out forever."""
    jitter: float = 0.1
    misconfigured_open: float = 300.0
    rate_limit_cooldown: float = 5.0
    """Cooldown after a 429 that gave no hint."""

    def __post_init__(self) -> None:
        counts = ("window", "min_calls", "consecutive_failures", "probe_failures")
        seconds = ("open_base", "open_cap", "probe_timeout", "misconfigured_open", "rate_limit_cooldown")
        for name in counts:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"BreakerConfig({name}={value!r}): a whole number of calls, at least 1")
        for name in seconds:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"BreakerConfig({name}={value!r}): seconds, a number above 0")
        if not 0 < self.failure_rate <= 1:
            raise ConfigurationError(
                f"BreakerConfig(failure_rate={self.failure_rate!r}): a fraction above 0, at most 1"
            )
        if not 0 <= self.jitter < 1:
            raise ConfigurationError(
                f"BreakerConfig(jitter={self.jitter!r}): a fraction from 0 up to (not including) 1"
            )
        if self.min_calls > self.window:
            # The window never holds that many calls, so the failure rate would never be checked.
            raise ConfigurationError(
                f"BreakerConfig(min_calls={self.min_calls}, window={self.window}): min_calls must not exceed window"
            )


@dataclass(frozen=True)
class BreakerSnapshot:
    """What `CircuitBreaker.snapshot` reports."""

    state: BreakerState
    failures: int
    calls: int
    consecutive_failures: int
    times_opened: int
    reopen_at: float | None
    cooldown_until: float | None


def refusal(
    name: str, misconfigured: bool, cooling: bool, reopen: float | None, now: float, where: str = ""
) -> CircuitOpenError:
    """The error for a call a breaker refused (`where`: said after the state, e.g. " (shared)")."""
    what = (
        "misconfigured (check the key, model name and TLS settings)"
        if misconfigured
        else "cooling down after a rate limit"
        if cooling
        else "open after repeated failures"
    )
    return CircuitOpenError(
        f"circuit for {name} is {what}{where}; "
        + (f"next try in {reopen - now:.1f} s" if reopen is not None else "a probe is in flight"),
        reopen_at=reopen,
        endpoint=name,
    )


def classify(exc: BaseException) -> Outcome:
    """What a failure means for the endpoint's health (read from the fault table)."""
    return fault_of(exc).breaker


class CircuitBreaker:
    """Health of one endpoint/model.

    ``allow(now)`` before a call (False: skip it), then exactly one of ``record(outcome, now)``.
    A call allowed in HALF_OPEN is the single probe; its outcome closes or re-opens the circuit.
    """

    def __init__(self, name: str, config: BreakerConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._samples: deque[bool] = deque(maxlen=self.config.window)  # True = failure
        self._consecutive = 0
        self._state = BreakerState.CLOSED
        self._reopen_at = 0.0
        self._cooldown_until = 0.0
        self._times_opened = 0
        self._healthy = 0
        self._probe_out = False
        self._probe_since = 0.0
        self._failed_probes = 0
        self._forced = False
        self._logged_misconfigured = False

    # ------------------------------------------------------------------------------ queries

    def state(self, now: float) -> BreakerState:
        """The state at `now` (an OPEN breaker whose time is up reads as HALF_OPEN)."""
        if self._state in (BreakerState.OPEN, BreakerState.MISCONFIGURED) and now >= self._reopen_at:
            return BreakerState.HALF_OPEN
        return self._state

    def reopen_at(self, now: float) -> float | None:
        """When a call will next be let through, or None if one would be now."""
        if self._state in (BreakerState.OPEN, BreakerState.MISCONFIGURED) and now < self._reopen_at:
            return self._reopen_at
        if self._cooldown_until > now:
            return self._cooldown_until
        return None

    def snapshot(self, now: float) -> BreakerSnapshot:
        return BreakerSnapshot(
            state=self.state(now),
            failures=sum(self._samples),
            calls=len(self._samples),
            consecutive_failures=self._consecutive,
            times_opened=self._times_opened,
            reopen_at=self.reopen_at(now),
            cooldown_until=self._cooldown_until if self._cooldown_until > now else None,
        )

    # ---------------------------------------------------------------------------- decisions

    def allow(self, now: float, *, ignore_cooldown: bool = False) -> bool:
        """May a call go now? `ignore_cooldown` is for retries, which a 429's hint already paces."""
        return self.admit(now, ignore_cooldown=ignore_cooldown) is not None

    def decides_locally(self, now: float, *, ignore_cooldown: bool = False) -> bool:
        """Can `admit` answer without a round trip to a state store? Always, for a breaker whose
        state lives in this process; a shared breaker says no when its copy is too old to decide,
        and an async caller then asks through `aadmit`."""
        return True

    async def aadmit(self, now: float, *, ignore_cooldown: bool = False) -> Literal["call", "probe"] | None:
        """`admit` for async callers: a shared breaker awaits its store instead of blocking."""
        return self.admit(now, ignore_cooldown=ignore_cooldown)

    def admit(self, now: float, *, ignore_cooldown: bool = False) -> Literal["call", "probe"] | None:
        """Like `allow`, saying whether the call is the half-open probe (pass ``probe=True`` to
        `record` for it): None when refused."""
        with self._lock:
            if self._cooldown_until > now and not ignore_cooldown:
                return None
            if self._state is BreakerState.CLOSED:
                return "call"
            if self._state is not BreakerState.HALF_OPEN and now < self._reopen_at:
                return None
            self._state = BreakerState.HALF_OPEN
            if self._probe_in_flight(now):
                return None
            self._probe_out = True
            self._probe_since = now
            return "probe"

    def force_probe(self, now: float) -> bool:
        """Panic mode (every model of a chain is open): make the next `allow` grant one probe now,
        unless the endpoint is MISCONFIGURED or a probe is already out."""
        with self._lock:
            if self._state is BreakerState.MISCONFIGURED or self._probe_in_flight(now):
                return False
            self._reopen_at = min(self._reopen_at, now)
            self._cooldown_until = min(self._cooldown_until, now)
            # The endpoint's time was not up yet: one failed probe is enough to send it back.
            self._forced = self._state is not BreakerState.CLOSED
            return True

    def seems_blocked(self, now: float) -> bool:
        """`blocked` from what this process knows, without asking a state store (the same as
        `blocked` for a breaker kept in this process)."""
        return self.blocked(now)

    def seems_reopen_at(self, now: float) -> float | None:
        """`reopen_at` from what this process knows, without asking a state store."""
        return self.reopen_at(now)

    def blocked(self, now: float) -> bool:
        """True when `allow` would refuse a new call now (without taking the probe slot)."""
        if self._cooldown_until > now:
            return True
        state = self.state(now)
        return state in (BreakerState.OPEN, BreakerState.MISCONFIGURED) or (
            state is BreakerState.HALF_OPEN and self._probe_in_flight(now)
        )

    def _probe_in_flight(self, now: float) -> bool:
        return self._probe_out and now - self._probe_since < self.config.probe_timeout

    @property
    def misconfigured(self) -> bool:
        return self._state is BreakerState.MISCONFIGURED

    def error(self, now: float) -> CircuitOpenError:
        """The error for a call the breaker refused."""
        return refusal(
            self.name, self._state is BreakerState.MISCONFIGURED, self._cooldown_until > now, self.reopen_at(now), now
        )

    # ------------------------------------------------------------------------------ records

    def record(self, outcome: Outcome, now: float, *, retry_after: float | None = None, probe: bool = False) -> None:
        """Count a call's outcome. `probe` marks the half-open probe; results of calls let in
        before the circuit opened are ignored once it is open (they would re-open it forever)."""
        with self._lock:
            if outcome == "cooldown":
                self._cooldown_until = max(self._cooldown_until, now + (retry_after or self.config.rate_limit_cooldown))
            if probe:
                self._probe_out = False
            elif self._state is not BreakerState.CLOSED and outcome != "misconfigured":
                return
            if outcome in ("ignored", "cooldown"):
                return
            if outcome == "misconfigured":
                self._open(now, self.config.misconfigured_open, BreakerState.MISCONFIGURED)
                if not self._logged_misconfigured:
                    self._logged_misconfigured = True
                    logger.warning(
                        "circuit %s marked MISCONFIGURED for %.0f s", self.name, self.config.misconfigured_open
                    )
                return
            failed = outcome == "failure"
            if probe:
                self._probe_result(failed, now)
                return
            self._samples.append(failed)
            self._consecutive = self._consecutive + 1 if failed else 0
            self._decay(failed)
            if failed and self._should_open():
                self._times_opened += 1
                self._open(now, self._open_seconds(), BreakerState.OPEN)

    def _probe_result(self, failed: bool, now: float) -> None:
        """One answer closes the circuit: the endpoint serves again. Re-opening takes
        `probe_failures` failed probes in a row, because a single probe fails by bad luck as
        often as the endpoint's ordinary failure rate (a 37 % rate would re-open it every third
        time, for longer each time). A forced panic-mode probe gets one chance only."""
        if not failed:
            self._close()
            return
        self._failed_probes += 1
        if self._forced or self._failed_probes >= self.config.probe_failures:
            self._times_opened += 1
            self._open(now, self._open_seconds(), BreakerState.OPEN)

    def _decay(self, failed: bool) -> None:
        """Forget one past opening per `window` successful calls (Envoy's ejection multiplier
        decays the same way), so an incident hours ago doesn't lengthen today's open window.
        Successes are counted, not required in a row: an endpoint with a few failures mixed in
        is still serving."""
        if not failed:
            self._healthy += 1
        if self._healthy >= self.config.min_calls and self._times_opened:
            self._times_opened -= 1
            self._healthy = 0

    def _should_open(self) -> bool:
        if self._consecutive >= self.config.consecutive_failures:
            return True
        calls = len(self._samples)
        return calls >= self.config.min_calls and sum(self._samples) / calls >= self.config.failure_rate

    def _open_seconds(self) -> float:
        seconds = min(self.config.open_base * self._times_opened, self.config.open_cap)
        return seconds * self._rng.uniform(1.0 - self.config.jitter, 1.0 + self.config.jitter)

    def _open(self, now: float, seconds: float, state: BreakerState) -> None:
        self._state = state
        # A re-open never shortens a window already granted.
        self._reopen_at = max(self._reopen_at, now + seconds)
        self._samples.clear()
        self._consecutive = 0
        self._failed_probes = 0
        self._forced = False
        self._healthy = 0
        logger.info("circuit %s %s for %.1f s", self.name, state.value, seconds)

    def _close(self) -> None:
        self._state = BreakerState.CLOSED
        self._samples.clear()
        self._consecutive = 0
        self._failed_probes = 0
        self._forced = False
        self._logged_misconfigured = False
        logger.info("circuit %s closed after a successful probe", self.name)

    def reset(self) -> None:
        """Forget everything (tests, or after fixing a configuration)."""
        with self._lock:
            self._samples.clear()
            self._consecutive = 0
            self._state = BreakerState.CLOSED
            self._reopen_at = self._cooldown_until = 0.0
            self._times_opened = 0
            self._healthy = 0
            self._probe_out = False
            self._failed_probes = 0
            self._forced = False

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name} {self._state.value}>"
