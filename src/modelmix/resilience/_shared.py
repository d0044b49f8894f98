"""Breakers and budgets whose state lives in a `StateStore`, and `mm.shared_state()`.

A `SharedCircuitBreaker` is a `CircuitBreaker` whose state machine runs in the store: every
process sees one endpoint's health. It keeps the last state the store sent back (each recorded
outcome returns it) and answers admissions from that copy while it is younger than `staleness`
seconds; only a copy that is stale, or a circuit due for its half-open probe, costs a round trip.
So the hot path of a healthy endpoint is one round trip per call (recording the outcome), and
another worker's verdict reaches this one within `staleness` seconds. While the store is
unreachable each process falls back to its own in-process breaker (the inherited state machine).

A `SharedLedger` is a budget's books in the store: reserve and settle are one atomic operation
each, so N workers never overspend one budget. Each reservation is a lease the store gives back
by itself if nobody settles it in time (the worker holding it died).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
from decimal import Decimal
from typing import Literal

from .._exceptions import CircuitOpenError, ConfigurationError
from ._breaker import BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, Outcome, refusal
from ._ledger import BudgetExceededError, BudgetLedger, BudgetSnapshot, Reservation, usd
from ._memory_store import MemoryStore
from ._state_store import BUDGET_LEASE_SECONDS, BreakerView, BudgetBooks, Outage, StateStore, StoreUnavailable

__all__ = ["SharedCircuitBreaker", "SharedLedger", "current_store", "shared_state"]

logger = logging.getLogger("modelmix")

DEFAULT_STALENESS = 0.5
_OPEN_STATES = (BreakerState.OPEN, BreakerState.MISCONFIGURED)


class SharedCircuitBreaker(CircuitBreaker):
    """A circuit breaker shared through `store` under `key` (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        store: StateStore,
        key: str,
        staleness: float = DEFAULT_STALENESS,
    ) -> None:
        super().__init__(name, config)
        if isinstance(staleness, bool) or not isinstance(staleness, (int, float)) or not 0 <= staleness <= 1:
            raise ConfigurationError(f"shared breaker staleness={staleness!r}: seconds, from 0 to 1")
        self.store = store
        self.key = key
        self.staleness = float(staleness)
        self._view: BreakerView | None = None
        self._seen_at = -math.inf
        self.probes = 0
        """Half-open probes this process was granted (across processes, one per reopening)."""

    def __repr__(self) -> str:
        state = self._view.state.value if self._view is not None else "unknown"
        return f"<SharedCircuitBreaker {self.name} {state} in {self.store!r}>"

    # ---------------------------------------------------------------------- the local copy

    def _remember(self, view: BreakerView, now: float) -> BreakerView:
        self._view, self._seen_at = view, now
        return view

    def _current(self, now: float) -> BreakerView | None:
        """The store's state as of at most `staleness` ago (None: unreachable)."""
        if self._view is not None and now - self._seen_at <= self.staleness:
            return self._view
        try:
            return self._remember(self.store.breaker_view(self.key, self.config), now)
        except StoreUnavailable:
            return None

    def _until(self, seconds: float | None) -> float | None:
        return None if seconds is None else self._seen_at + seconds

    def _view_reopen(self, view: BreakerView, now: float) -> float | None:
        at = self._until(view.reopen_in)
        return at if at is not None and at > now else None

    def _view_cooldown(self, view: BreakerView, now: float) -> float | None:
        at = self._until(view.cooldown_in)
        return at if at is not None and at > now else None

    # ----------------------------------------------------------------------------- queries

    def state(self, now: float) -> BreakerState:
        view = self._current(now)
        if view is None:
            return super().state(now)
        if view.state in _OPEN_STATES and self._view_reopen(view, now) is None:
            return BreakerState.HALF_OPEN
        return view.state

    def reopen_at(self, now: float) -> float | None:
        view = self._current(now)
        return super().reopen_at(now) if view is None else self._view_reopen(view, now)

    def snapshot(self, now: float) -> BreakerSnapshot:
        view = self._current(now)
        if view is None:
            return super().snapshot(now)
        return BreakerSnapshot(
            state=self.state(now),
            failures=view.failures,
            calls=view.calls,
            consecutive_failures=view.consecutive_failures,
            times_opened=view.times_opened,
            reopen_at=self._view_reopen(view, now),
            cooldown_until=self._view_cooldown(view, now),
        )

    def seems_blocked(self, now: float) -> bool:
        # The last state the store sent, however old; never heard from it: nothing says blocked.
        view = self._view
        return view is not None and self._view_reopen(view, now) is not None

    def seems_reopen_at(self, now: float) -> float | None:
        view = self._view
        return None if view is None else self._view_reopen(view, now)

    def blocked(self, now: float) -> bool:
        view = self._current(now)
        if view is None:
            return super().blocked(now)
        return self._view_reopen(view, now) is not None

    @property
    def misconfigured(self) -> bool:
        if self._view is None:
            return super().misconfigured
        return self._view.state is BreakerState.MISCONFIGURED

    def error(self, now: float) -> CircuitOpenError:
        view = self._current(now)
        if view is None:
            return super().error(now)
        misconfigured = view.state is BreakerState.MISCONFIGURED
        cooling = self._view_cooldown(view, now) is not None
        return refusal(self.name, misconfigured, cooling, self._view_reopen(view, now), now, " (shared)")

    # ---------------------------------------------------------------------------- decisions

    def decides_locally(self, now: float, *, ignore_cooldown: bool = False) -> bool:
        view = self._view
        if view is None or now - self._seen_at > self.staleness:
            return False
        # From the copy: a closed circuit lets the call go, an open one refuses it; anything else
        # (a probe due, a cooldown) is the store's to decide.
        if view.state is BreakerState.CLOSED:
            return ignore_cooldown or self._view_cooldown(view, now) is None
        return view.state in _OPEN_STATES and self._view_reopen(view, now) is not None

    def admit(self, now: float, *, ignore_cooldown: bool = False) -> Literal["call", "probe"] | None:
        if self.decides_locally(now, ignore_cooldown=ignore_cooldown):
            return "call" if self._view is not None and self._view.state is BreakerState.CLOSED else None
        try:
            view = self.store.breaker_admit(self.key, self.config, ignore_cooldown=ignore_cooldown)
        except StoreUnavailable:
            return super().admit(now, ignore_cooldown=ignore_cooldown)
        return self._admitted(view, now)

    async def aadmit(self, now: float, *, ignore_cooldown: bool = False) -> Literal["call", "probe"] | None:
        if self.decides_locally(now, ignore_cooldown=ignore_cooldown):
            return self.admit(now, ignore_cooldown=ignore_cooldown)
        try:
            view = await self.store.abreaker_admit(self.key, self.config, ignore_cooldown=ignore_cooldown)
        except StoreUnavailable:
            return CircuitBreaker.admit(self, now, ignore_cooldown=ignore_cooldown)
        return self._admitted(view, now)

    def _admitted(self, view: BreakerView, now: float) -> Literal["call", "probe"] | None:
        self._remember(view, now)
        if view.admission == "probe":
            self.probes += 1
        return view.admission

    def record(self, outcome: Outcome, now: float, *, retry_after: float | None = None, probe: bool = False) -> None:
        jitter = self._rng.uniform(1.0 - self.config.jitter, 1.0 + self.config.jitter)

        def send() -> None:
            try:
                view = self.store.breaker_record(
                    self.key, self.config, outcome, retry_after=retry_after, probe=probe, jitter=jitter
                )
            except StoreUnavailable:
                CircuitBreaker.record(self, outcome, now, retry_after=retry_after, probe=probe)
                return
            self._remember(view, now)

        if _in_event_loop():
            # An event loop must not wait on the network for bookkeeping: the outcome goes to the
            # store from the store's background thread, and the copy is refreshed when it lands.
            self.store.later(send)
        else:
            send()

    def force_probe(self, now: float) -> bool:
        try:
            forced = self.store.breaker_force_probe(self.key, self.config)
        except StoreUnavailable:
            return super().force_probe(now)
        self._view = None  # the next admission asks the store
        return forced

    def reset(self) -> None:
        super().reset()
        self._view = None
        try:
            self.store.breaker_reset(self.key)
        except StoreUnavailable:
            logger.warning("circuit %s: could not reset the shared state (store unreachable)", self.name)


def _in_event_loop() -> bool:
    """Is this thread running an event loop (asyncio, or trio if it is loaded)?"""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


class _Uncounted(Reservation):
    """A reservation made while the store was unreachable and budgets let calls through."""


class SharedLedger(BudgetLedger):
    """A budget's books kept in `store` under `scope`: shared by every process using the store."""

    def __init__(
        self, max_usd: Decimal, *, store: StateStore, scope: str, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> None:
        super().__init__(max_usd)
        self.store = store
        self.scope = scope
        self.lease_seconds = lease_seconds
        """How long a reservation is held when its call has no deadline."""
        self._last = BudgetBooks(True, Decimal(0), Decimal(0))
        self._unsent: list[tuple[str, Decimal]] = []
        """Settlements the store did not take (unreachable): sent with the next operation."""
        self._guard = threading.Lock()

    def _seen(self, books: BudgetBooks) -> BudgetBooks:
        self._last = books
        with self._guard:
            self._peak = max(self._peak, books.spent + books.reserved)
        return books

    def _resend(self) -> None:
        while self._unsent:
            with self._guard:
                if not self._unsent:
                    return
                lease, cost = self._unsent.pop(0)
            try:
                self._seen(self.store.budget_settle(self.scope, lease, cost))
            except StoreUnavailable:
                with self._guard:
                    self._unsent.insert(0, (lease, cost))
                raise

    def snapshot(self) -> BudgetSnapshot:
        """The shared books (the last ones seen while the store is unreachable)."""
        self.store.flush()
        try:
            self._resend()
            books = self._seen(self.store.budget_books(self.scope))
        except StoreUnavailable:
            books = self._last
        return BudgetSnapshot(self.max_usd, books.spent, books.reserved)

    def left_hint(self) -> Decimal:
        # The books the last operation saw: a hint for sizing a reservation, not worth a round trip.
        return self.max_usd - self._last.spent - self._last.reserved

    def try_reserve(self, amount: Decimal, lease_seconds: float | None = None) -> Reservation | None:
        seconds = self.lease_seconds if lease_seconds is None else lease_seconds
        try:
            self._resend()
            books = self._seen(self.store.budget_reserve(self.scope, self.max_usd, amount, seconds))
        except StoreUnavailable as exc:
            return self._unreachable(amount, exc)
        return Reservation(amount, lease=books.lease) if books.ok else None

    async def atry_reserve(self, amount: Decimal, lease_seconds: float | None = None) -> Reservation | None:
        seconds = self.lease_seconds if lease_seconds is None else lease_seconds
        try:
            self._resend()
            books = self._seen(await self.store.abudget_reserve(self.scope, self.max_usd, amount, seconds))
        except StoreUnavailable as exc:
            return self._unreachable(amount, exc)
        return Reservation(amount, lease=books.lease) if books.ok else None

    def _unreachable(self, amount: Decimal, exc: StoreUnavailable) -> Reservation:
        """The store's outage policy: an uncounted reservation, or a refusal."""
        if self.store.budget_outage == "allow":
            return _Uncounted(amount)
        raise BudgetExceededError(
            f"the shared budget {self.scope!r} can't be checked: its store ({self.store!r}) is unreachable, and "
            "budgets refuse calls while it is (budget_outage='refuse'); nothing was sent",
            max_usd=self.max_usd,
            spent=self._last.spent,
            reserved=self._last.reserved,
            needed=amount,
        ) from exc

    def settle(self, reservation: Reservation, cost: Decimal) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        self._send(reservation.lease, cost)  # an uncounted reservation has no lease: a plain charge

    def charge(self, cost: Decimal) -> None:
        self._send("", cost)

    def _send(self, lease: str, cost: Decimal) -> None:
        """Settle off the caller's path: until it lands the money stays reserved, never spendable
        twice (unless the lease ends first: the store then gives it back, once, and the late
        settlement only spends the cost)."""

        def settle() -> None:
            try:
                self._seen(self.store.budget_settle(self.scope, lease, cost))
            except StoreUnavailable:
                with self._guard:
                    self._unsent.append((lease, cost))
                logger.debug("budget %s: settlement of %s kept until the store is back", self.scope, usd(cost))

        self.store.later(settle)


# ------------------------------------------------------------------------ the process default

_lock = threading.Lock()
_current: StateStore | None = None


def current_store() -> StateStore:
    """The store `shared_state` configured (a process-wide `MemoryStore` until then)."""
    global _current
    with _lock:
        if _current is None:
            _current = MemoryStore()
        return _current


def shared_state(
    target: str | StateStore | None = None,
    *,
    prefix: str = "modelmix",
    timeout: float = 0.25,
    budget_outage: Outage = "refuse",
    limit_outage: Outage = "allow",
    staleness: float = DEFAULT_STALENESS,
) -> StateStore:
    """``mm.shared_state("redis://host:6379/0")``: share circuit breakers, rate limits and budgets
    with every process that points at the same store.

    Call it once at startup, before building models: circuit breakers created after it (every
    ``mm.circuit_breaker`` and ``mm.fallback`` member) are shared per (endpoint, model), and every
    ``mm.rate_limit(...)`` and ``mm.budget(..., scope=...)`` uses it. `target` is a
    ``redis://``/``rediss://``/``unix://`` URL (Redis or Valkey; needs ``modelmix[redis]``), a
    `StateStore`, or None / ``"memory"`` for the in-process default. `timeout` bounds each store
    operation (seconds); while the store is unreachable budgets refuse calls and rate limits let
    them through (``budget_outage`` / ``limit_outage``: "refuse" or "allow"), and breakers use each
    process's own state. `staleness` (≤ 1 s) is how old a breaker's copy of the shared state may be.
    Returns the store.
    """
    from ._endpoints import registry

    global _current
    if isinstance(staleness, bool) or not isinstance(staleness, (int, float)) or not 0 <= staleness <= 1:
        raise ConfigurationError(f"shared_state(staleness={staleness!r}): seconds, from 0 to 1")
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise ConfigurationError(f"shared_state(prefix={prefix!r}): a non-empty string without braces")
    if target is None or target == "memory":
        store: StateStore = MemoryStore()
        shared = False
    elif isinstance(target, StateStore):
        store, shared = target, True
    elif isinstance(target, str) and target.split("://", 1)[0] in ("redis", "rediss", "unix", "valkey", "valkeys"):
        from ._redis_store import RedisStore

        url = target.replace("valkey", "redis", 1) if target.startswith("valkey") else target
        store = RedisStore(url, prefix=prefix, timeout=timeout, budget_outage=budget_outage, limit_outage=limit_outage)
        shared = True
    else:
        raise ConfigurationError(
            f"shared_state({target!r}): a redis://, rediss:// or unix:// URL, a StateStore, "
            "or None for in-process state"
        )
    with _lock:
        _current = store
    registry.use_store(store if shared else None, staleness=staleness)
    return store
