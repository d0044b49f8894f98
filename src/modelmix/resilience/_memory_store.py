"""`MemoryStore`: the state of one process, in dictionaries under one lock (the default store).

Breakers here are today's `CircuitBreaker` objects, so a process that never configures shared
state behaves exactly as before; budgets and limits follow the same rules the Redis store's
scripts apply, on this process's clock (injectable, so tests never sleep).
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from ._breaker import BreakerConfig, CircuitBreaker, Outcome
from ._clock import SYSTEM_CLOCK, Clock
from ._state_store import (
    BUCKETS,
    BUDGET_LEASE_SECONDS,
    BreakerView,
    BudgetBooks,
    LimitGrant,
    LimitSpec,
    StateStore,
    bucket_wait,
    check_lease_seconds,
)

__all__ = ["MemoryStore"]

_CONCURRENCY_POLL = 0.02
"""Seconds to wait before asking again for a concurrency slot (a slot frees when a call ends,
which no clock can predict)."""


@dataclass
class _Books:
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    leases: dict[str, tuple[Decimal, float]] = field(default_factory=dict)
    """Reservations in flight: lease → (amount, when it ends on the store's clock)."""
    first_end: float = math.inf
    """No lease ends before this (it may be earlier than the true first end, never later), so
    most operations skip the scan of every call in flight."""

    def hold(self, lease: str, amount: Decimal, until: float) -> None:
        self.leases[lease] = (amount, until)
        self.reserved += amount
        self.first_end = min(self.first_end, until)

    def expire(self, now: float) -> None:
        """Give back the reservations whose lease ended unsettled (the Redis script does the same)."""
        if now < self.first_end:
            return
        ended = [lease for lease, (_, until) in self.leases.items() if until <= now]
        for lease in ended:
            amount, _ = self.leases.pop(lease)
            self.reserved = max(Decimal(0), self.reserved - amount)
        self.first_end = min((until for _, until in self.leases.values()), default=math.inf)


@dataclass
class _Limiter:
    buckets: dict[int, list[int]] = field(default_factory=dict)
    """Bucket number → [requests, tokens]; only the last ``BUCKETS + 1`` are kept."""
    leases: dict[str, float] = field(default_factory=dict)
    """Concurrency slot → when it is given back even if never released."""


class MemoryStore(StateStore):
    """Breakers, limits and budgets shared by everything in this process (threads and tasks)."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self._budgets: dict[str, _Books] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._limiters: dict[str, _Limiter] = {}

    def __repr__(self) -> str:
        return "MemoryStore()"

    # ----------------------------------------------------------------------------- budgets

    def _books(self, scope: str) -> _Books:
        """A budget's books, its ended leases given back (call under the lock)."""
        books = self._budgets.get(scope)
        if books is None:
            books = self._budgets[scope] = _Books()
        books.expire(self.clock.now())
        return books

    def budget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        seconds = check_lease_seconds("budget_reserve", lease_seconds)
        with self._lock:
            books = self._books(scope)
            if books.spent + books.reserved + amount > max_usd:
                return BudgetBooks(False, books.spent, books.reserved)
            if amount <= 0:
                return BudgetBooks(True, books.spent, books.reserved)  # nothing to hold, nothing to lose
            lease = uuid.uuid4().hex
            books.hold(lease, amount, self.clock.now() + seconds)
            return BudgetBooks(True, books.spent, books.reserved, lease)

    def budget_settle(self, scope: str, lease: str, cost: Decimal) -> BudgetBooks:
        with self._lock:
            books = self._books(scope)
            held = books.leases.pop(lease, None) if lease else None
            if held is not None:
                # A lease that already ended gave its amount back when it did: not twice.
                books.reserved = max(Decimal(0), books.reserved - held[0])
            books.spent += cost
            return BudgetBooks(True, books.spent, books.reserved)

    def budget_books(self, scope: str) -> BudgetBooks:
        with self._lock:
            books = self._books(scope)
            return BudgetBooks(True, books.spent, books.reserved)

    def budget_reset(self, scope: str) -> None:
        with self._lock:
            self._budgets.pop(scope, None)

    # ---------------------------------------------------------------------------- breakers

    def _breaker(self, key: str, config: BreakerConfig) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(key, config)
            return breaker

    def _view(self, breaker: CircuitBreaker, now: float, admission: str | None = None) -> BreakerView:
        snap = breaker.snapshot(now)
        return BreakerView(
            admission=admission,  # type: ignore[arg-type]
            state=snap.state,
            reopen_in=None if snap.reopen_at is None else snap.reopen_at - now,
            cooldown_in=None if snap.cooldown_until is None else snap.cooldown_until - now,
            times_opened=snap.times_opened,
            calls=snap.calls,
            failures=snap.failures,
            consecutive_failures=snap.consecutive_failures,
        )

    def breaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        breaker, now = self._breaker(key, config), self.clock.now()
        return self._view(breaker, now, breaker.admit(now, ignore_cooldown=ignore_cooldown))

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
        # The in-process breaker draws its own jitter, exactly as it always has.
        breaker, now = self._breaker(key, config), self.clock.now()
        breaker.record(outcome, now, retry_after=retry_after, probe=probe)
        return self._view(breaker, now)

    def breaker_view(self, key: str, config: BreakerConfig) -> BreakerView:
        return self._view(self._breaker(key, config), self.clock.now())

    def breaker_force_probe(self, key: str, config: BreakerConfig) -> bool:
        return self._breaker(key, config).force_probe(self.clock.now())

    def breaker_reset(self, key: str) -> None:
        with self._lock:
            self._breakers.pop(key, None)

    # ------------------------------------------------------------------------- rate limits

    def limit_acquire(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> LimitGrant:
        now = self.clock.now()
        size = spec.window / BUCKETS
        index = math.floor(now / size)
        with self._lock:
            limiter = self._limiters.setdefault(scope, _Limiter())
            for old in [b for b in limiter.buckets if b < index - BUCKETS]:
                del limiter.buckets[old]
            recent = [limiter.buckets.get(b, [0, 0]) for b in range(index - BUCKETS, index + 1)]
            checks = ((spec.rpm, 0, 1, "rpm"), (spec.tpm, 1, tokens, "tpm"))
            for limit, slot, need, reason in checks:
                if limit is None:
                    continue
                wait = bucket_wait([c[slot] for c in recent], need, limit, index, now, size)
                if wait > 0:
                    return LimitGrant(False, wait, reason, index)
            if spec.max_concurrency is not None:
                limiter.leases = {k: v for k, v in limiter.leases.items() if v > now}
                if len(limiter.leases) >= spec.max_concurrency:
                    return LimitGrant(False, _CONCURRENCY_POLL, "concurrency", index)
                limiter.leases[lease] = now + spec.lease_seconds
            counts = limiter.buckets.setdefault(index, [0, 0])
            counts[0] += 1
            counts[1] += tokens
            return LimitGrant(True, 0.0, "", index)

    def limit_settle(
        self, scope: str, spec: LimitSpec, grant: LimitGrant, lease: str, reserved: int, used: int
    ) -> None:
        with self._lock:
            limiter = self._limiters.get(scope)
            if limiter is None:
                return
            limiter.leases.pop(lease, None)
            counts = limiter.buckets.get(grant.window)
            if counts is not None and used != reserved:
                counts[1] = max(0, counts[1] + used - reserved)
