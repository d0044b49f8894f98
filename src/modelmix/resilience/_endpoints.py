"""Shared per-endpoint state: one retry budget per endpoint and one breaker per (endpoint, model),
so every wrapper pointing at the same deployment sees the same health."""

from __future__ import annotations

import threading

from ._breaker import BreakerConfig, CircuitBreaker
from ._policy import RetryBudget

__all__ = ["EndpointRegistry", "registry"]


class EndpointRegistry:
    """Per-endpoint shared state: a retry budget per endpoint and a breaker per (endpoint, model).

    Wrappers use the process-wide `registry` unless given their own (tests, isolated tenants).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[str, RetryBudget] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

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
                breaker = self._breakers[key] = CircuitBreaker(f"{model} at {endpoint}", config)
            return breaker

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
