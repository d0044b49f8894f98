"""Resilience: retries, fallback chains, one deadline, circuit breakers, hedging, budgets and cascades.

Every wrapper is itself a `modelmix.Model`, so they compose::

    chain = mm.fallback(mm.hedge("azure:gpt-4o", "openai:gpt-4o", after="p95"), "ollama:llama3.2", deadline=30)

Every call runs one sans-I/O call plan (deadline, breaker admission, retry budget, waits, attempt
records, fallback order, stream commit point), and retries, breakers and chains read one fault
table. `WrapperModel` is the base of every wrapper: ``wrapped`` and ``unwrap()`` reach the model
inside. The policy and its numbers are documented in the guides "Retries and fallback chains",
"Deadlines, circuit breakers and hedging".
"""

from ._breaker import BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, classify
from ._budget import BudgetModel, budget
from ._cascade import CascadeModel, CascadeResponse, cascade
from ._clock import Clock, Deadline
from ._endpoints import EndpointRegistry, registry
from ._fallback import FallbackModel, fallback, should_fall_back
from ._hedge import HedgedModel, hedge
from ._memory_store import MemoryStore
from ._policy import RetryBudget, RetryPolicy, retries_allowed
from ._rate_limit import RateLimitedModel, rate_limit
from ._redis_store import RedisStore
from ._retrying import ResilientModel, circuit_breaker, retrying
from ._shared import SharedCircuitBreaker, shared_state
from ._state_store import StateStore
from ._wrapper import WrapperModel

__all__ = [
    "BreakerConfig",
    "BreakerSnapshot",
    "BreakerState",
    "BudgetModel",
    "CascadeModel",
    "CascadeResponse",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "EndpointRegistry",
    "FallbackModel",
    "HedgedModel",
    "MemoryStore",
    "RateLimitedModel",
    "RedisStore",
    "ResilientModel",
    "RetryBudget",
    "RetryPolicy",
    "SharedCircuitBreaker",
    "StateStore",
    "WrapperModel",
    "budget",
    "cascade",
    "circuit_breaker",
    "classify",
    "fallback",
    "hedge",
    "rate_limit",
    "registry",
    "retries_allowed",
    "retrying",
    "shared_state",
    "should_fall_back",
]
