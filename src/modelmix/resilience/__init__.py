"""Resilience: retries, fallback chains, one deadline, circuit breakers and hedging.

Every wrapper is itself a `modelmix.Model`, so they compose::

    chain = mm.fallback(mm.hedge("azure:gpt-4o", "openai:gpt-4o", after="p95"), "ollama:llama3.2", deadline=30)

The policy and its numbers are documented in the guides "Retries and fallback chains", "Deadlines,
circuit breakers and hedging".
"""

from ._breaker import BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, classify
from ._clock import Clock, Deadline
from ._endpoints import EndpointRegistry, registry
from ._fallback import FallbackModel, fallback, should_fall_back
from ._hedge import HedgedModel, hedge
from ._policy import RetryBudget, RetryPolicy, retries_allowed
from ._retrying import ResilientModel, circuit_breaker, retrying

__all__ = [
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "EndpointRegistry",
    "FallbackModel",
    "HedgedModel",
    "ResilientModel",
    "RetryBudget",
    "RetryPolicy",
    "circuit_breaker",
    "classify",
    "fallback",
    "hedge",
    "registry",
    "retries_allowed",
    "retrying",
    "should_fall_back",
]
