"""Where breakers, rate limits and budgets keep the state that several processes must share.

A `StateStore` offers a handful of *whole* operations — reserve money, settle it, admit a call
through a breaker, record its outcome, take a slot under a rate limit — never a generic get/set:
each one must be atomic on the store (one Lua script on Redis), because a read followed by a write
from another process is exactly how shared budgets drift and shared limits get exceeded.

Times cross the interface as *seconds from now* (``reopen_in``, ``wait``): the store keeps its own
clock (the Redis server's), and each process turns the relative figure into its own clock's time.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from .._exceptions import ConfigurationError
from ._breaker import BreakerConfig, BreakerState, Outcome

__all__ = [
    "BUCKETS",
    "BUDGET_LEASE_SECONDS",
    "BreakerView",
    "BudgetBooks",
    "LimitGrant",
    "LimitSpec",
    "Outage",
    "StateStore",
    "StoreUnavailable",
    "bucket_wait",
    "check_lease_seconds",
    "from_nanos",
    "to_nanos",
]

Outage = Literal["allow", "refuse"]
"""What a feature does while its store is unreachable: let calls through, or refuse them."""

Admission = Literal["call", "probe"]

_NANO = Decimal("1e-9")


def to_nanos(amount: Decimal) -> int:
    """USD as whole nano-dollars, rounded up: a reservation is never smaller than the amount."""
    return int((amount / _NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) * _NANO


class StoreUnavailable(Exception):
    """The store could not be reached within its timeout (or its own breaker is open).

    Internal: the feature that asked applies its declared outage policy and the caller never sees
    this class.
    """


BUDGET_LEASE_SECONDS = 600.0
"""How long a budget reservation is held when nobody says: a process that dies before settling
(SIGKILL, out of memory) gives its reservation back after this long."""


def check_lease_seconds(where: str, value: object) -> float:
    """A lease length in seconds (finite, above 0), or a `ConfigurationError` naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(f"{where}(lease_seconds={value!r}): seconds, a finite number above 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class BudgetBooks:
    """A budget's books after an operation; `ok` says whether a reservation was granted."""

    ok: bool
    spent: Decimal
    reserved: Decimal
    lease: str = ""
    """For `budget_reserve`: the granted reservation's lease, to pass to `budget_settle` ("" when
    nothing was set aside: refused, or an amount of 0)."""


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Client-side limits of one scope (None: no such limit)."""

    rpm: int | None = None
    """Requests per `window` seconds (60 by default: per minute)."""
    tpm: int | None = None
    """Tokens (prompt + answer) per `window` seconds. Both are counted over a sliding window: no
    `window`-long stretch of time ever holds more."""
    max_concurrency: int | None = None
    """Calls in flight at once, across every process sharing the store."""
    window: float = 60.0
    lease_seconds: float = 600.0
    """A slot taken by a process that died is given back after this long."""

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"rate_limit({name}={value!r}): a whole number, at least 1, or None")
        for name in ("window", "lease_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigurationError(f"rate_limit({name}={value!r}): seconds, a finite number above 0")
        if self.rpm is None and self.tpm is None and self.max_concurrency is None:
            raise ConfigurationError("rate_limit() needs at least one of rpm=, tpm= or max_concurrency=")


@dataclass(frozen=True, slots=True)
class LimitGrant:
    """The answer to a request for a slot under a `LimitSpec`."""

    granted: bool
    wait: float
    """Seconds until it may be granted (0 when granted; inf: never — the call alone exceeds the limit)."""
    reason: str
    """Which limit refused it: "rpm", "tpm", "concurrency" ("" when granted)."""
    window: int
    """The bucket the call was counted in, for `limit_settle`."""


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A shared breaker's state as one operation left it."""

    admission: Admission | None
    """For `breaker_admit`: "call", "probe" (the one half-open probe) or None (refused)."""
    state: BreakerState
    reopen_in: float | None
    """Seconds until the breaker lets a call through again (None: it would now)."""
    cooldown_in: float | None
    """Seconds left of a 429 cooldown (None: none)."""
    times_opened: int = 0
    forced: bool = False
    """For `breaker_force_probe`: whether the next admission will be a probe."""
    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0


BUCKETS = 10
"""A limit's window is counted in this many buckets. A call is let in only if the last
``BUCKETS + 1`` buckets (which cover any window-long stretch of time) stay within the limit, so
no sliding window ever holds more than the limit, at the price of using at most
``BUCKETS / (BUCKETS + 1)`` (91 %) of it under steady load."""


def bucket_wait(counts: list[float], need: float, limit: float, index: int, now: float, size: float) -> float:
    """Seconds until `need` more fits under `limit` (0: now; inf: never, `need` alone exceeds it).

    `counts` are the last ``BUCKETS + 1`` buckets' counts, oldest first, ending with the current
    bucket `index`; a bucket leaves the sum when ``BUCKETS + 1`` newer ones have begun. The Redis
    store's Lua script computes the same figure.
    """
    if need > limit:
        return math.inf
    excess = sum(counts) + need - limit
    if excess <= 0:
        return 0.0
    freed = 0.0
    for age, count in enumerate(counts):
        freed += count
        if freed >= excess:
            bucket = index - BUCKETS + age
            return max(0.0, (bucket + BUCKETS + 1) * size - now)
    return max(0.0, (index + BUCKETS + 1) * size - now)


class StateStore(ABC):
    """Shared state for circuit breakers, client-side rate limits and budgets.

    Two implementations ship: `MemoryStore` (one process; the default) and `RedisStore` (every
    process and host pointing at one Redis or Valkey). Each method is one atomic operation.
    `budget_outage` and `limit_outage` say what budgets and rate limits do while the store can't
    be reached (budgets refuse calls, limits let them through, by default); breakers then fall
    back to each process's own breaker. The ``a``-prefixed methods are the async forms.
    """

    budget_outage: Outage = "refuse"
    limit_outage: Outage = "allow"

    # ----------------------------------------------------------------------------- budgets

    # A reservation is a lease: the store holds it for `lease_seconds` on its own clock, and every
    # budget operation first gives back the leases that ended unsettled (their process died), so
    # a crash between reserve and settle can't shrink a shared budget for good.

    @abstractmethod
    def budget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        """Set `amount` aside if spent + reserved + amount stays within `max_usd`, for at most
        `lease_seconds`; the books' `lease` names it for `budget_settle`."""

    @abstractmethod
    def budget_settle(self, scope: str, lease: str, cost: Decimal) -> BudgetBooks:
        """The call holding `lease` is over and cost `cost`: its reservation goes back (unless its
        lease already ended and gave it back) and the cost is spent, once. A call that reserved
        nothing passes ``lease=""``."""

    @abstractmethod
    def budget_books(self, scope: str) -> BudgetBooks:
        """Spent and reserved, read together."""

    @abstractmethod
    def budget_reset(self, scope: str) -> None:
        """Forget a budget's books and leases (a new period starts)."""

    async def abudget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        return self.budget_reserve(scope, max_usd, amount, lease_seconds)

    async def abudget_settle(self, scope: str, lease: str, cost: Decimal) -> BudgetBooks:
        return self.budget_settle(scope, lease, cost)

    # ---------------------------------------------------------------------------- breakers

    @abstractmethod
    def breaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        """May a call go now? At most one caller gets the half-open probe, across every process."""

    async def abreaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        """`breaker_admit` for async callers (a store over the network awaits its reply)."""
        return self.breaker_admit(key, config, ignore_cooldown=ignore_cooldown)

    @abstractmethod
    def breaker_record(
        self,
        key: str,
        config: BreakerConfig,
        outcome: Outcome,
        *,
        retry_after: float | None = None,
        probe: bool = False,
        jitter: float = 1.0,
    ) -> BreakerView:
        """Count a call's outcome; `jitter` multiplies the open time if this opens the circuit."""

    @abstractmethod
    def breaker_view(self, key: str, config: BreakerConfig) -> BreakerView:
        """The breaker's state without taking anything."""

    @abstractmethod
    def breaker_force_probe(self, key: str, config: BreakerConfig) -> bool:
        """Panic mode: let the next admission be a probe now (not for a MISCONFIGURED endpoint)."""

    @abstractmethod
    def breaker_reset(self, key: str) -> None:
        """Forget a breaker's state."""

    # ------------------------------------------------------------------------- rate limits

    @abstractmethod
    def limit_acquire(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> LimitGrant:
        """Take one request, `tokens` tokens and one concurrency slot (held as `lease`) if all fit."""

    @abstractmethod
    def limit_settle(
        self, scope: str, spec: LimitSpec, grant: LimitGrant, lease: str, reserved: int, used: int
    ) -> None:
        """The call holding `lease` is over: free its slot, and correct its window's tokens from
        the `reserved` estimate to the `used` real figure."""

    async def alimit_acquire(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> LimitGrant:
        return self.limit_acquire(scope, spec, tokens, lease)

    async def alimit_settle(
        self, scope: str, spec: LimitSpec, grant: LimitGrant, lease: str, reserved: int, used: int
    ) -> None:
        self.limit_settle(scope, spec, grant, lease, reserved, used)

    # ------------------------------------------------------------------------- bookkeeping

    def later(self, operation: Callable[[], object]) -> None:
        """Run `operation` — bookkeeping nobody waits on (a settlement after a call) — soon, off
        the caller's path. A store over the network runs it on a background thread, so a call
        pays one round trip (its reservation), not two; the in-memory store runs it at once.
        `StoreUnavailable` raised by it is dropped (the store's outage policy already applies)."""
        with contextlib.suppress(StoreUnavailable):
            operation()

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until operations passed to `later` are done (False if `timeout` passed first)."""
        return True

    # ------------------------------------------------------------------------------- admin

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections (the store can't be used after)."""

    async def aclose(self) -> None:  # noqa: B027
        """Release the connections of the running event loop (call it before the loop ends)."""
