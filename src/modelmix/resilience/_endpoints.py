"""Shared per-endpoint state: one retry budget per endpoint and one breaker per (endpoint, model),
so every wrapper pointing at the same deployment sees the same health."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ._breaker import BreakerConfig, CircuitBreaker
from ._policy import RetryBudget

if TYPE_CHECKING:
    from ._state_store import StateStore

__all__ = ["EndpointRegistry", "registry"]


class EndpointRegistry:
    """Per-endpoint shared state: a retry budget per endpoint and a breaker per (endpoint, model).

    Wrappers use the process-wide `registry` unless given their own (tests, isolated tenants).
    With a shared `store` (``mm.shared_state(...)``), breakers created from then on keep their
    state there, shared with every process using the same store.
    """

    def __init__(self, store: StateStore | None = None, *, staleness: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[str, RetryBudget] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self.store = store
        self.staleness = staleness

    def use_store(self, store: StateStore | None, *, staleness: float = 0.5) -> None:
        """Keep breakers created from now on in `store` (None: in this process). Breakers made
        before keep their state where it is."""
        with self._lock:
            self.store = store
            self.staleness = staleness
            self._breakers.clear()

    def budget(self, endpoint: str) -> RetryBudget:
        with self._lock:
            budget = self._budgets.get(endpoint)
            if budget is None:
                budget = self._budgets[endpoint] = RetryBudget()
            return budget

    def breaker(self, endpoint: str, model: str, config: BreakerConfig | None = None) -> CircuitBreaker:
        with self._lock:
            key = (endpoint, model)
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = self._new_breaker(endpoint, model, config)
            return breaker

    def _new_breaker(self, endpoint: str, model: str, config: BreakerConfig | None) -> CircuitBreaker:
        name = f"{model} at {endpoint}"
        if self.store is None:
            return CircuitBreaker(name, config)
        from ._shared import SharedCircuitBreaker

        return SharedCircuitBreaker(name, config, store=self.store, key=f"{endpoint}|{model}", staleness=self.staleness)

    def breakers(self) -> dict[tuple[str, str], CircuitBreaker]:
        """Every breaker created so far, by (endpoint, model): the state is queryable."""
        with self._lock:
            return dict(self._breakers)

    def clear(self) -> None:
        """Forget all budgets and breakers (tests)."""
        with self._lock:
            self._budgets.clear()
            self._breakers.clear()


registry = EndpointRegistry()
"""The process-wide registry used unless a wrapper is given its own."""
