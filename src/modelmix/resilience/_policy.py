"""The retry policy as small tenacity strategies.

What is retried, how often and how long to wait are pure functions of the error, the attempt
number, the remaining deadline and the endpoint's retry budget. They are plain callables taking
tenacity's ``RetryCallState`` so they compose with any other tenacity strategy.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState

from .._exceptions import ModelMixError, RateLimitError
from ._faults import fault_of

__all__ = [
    "RetryBudget",
    "RetryPolicy",
    "default_wait",
    "retries_allowed",
    "wait_backoff",
    "wait_first",
    "wait_fixed_for_kind",
    "wait_server_hint",
]

INF = math.inf
BUDGET_SPENT = "the endpoint's retry budget is spent"


@dataclass(frozen=True)
class RetryPolicy:
    """Per-deployment retry settings (the planner reads them). The defaults are listed in the retries guide."""

    max_retries: int = 2
    """Retries after the first attempt (3 attempts in all)."""
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    rate_limit_floor: float = 0.25
    """Minimum wait after a 429 without a hint."""
    hint_cap: float = 120.0
    """A server hint longer than this is not slept on: the call fails over at once."""
    hint_jitter: float = 0.1
    """Hinted sleeps get 0–10 % extra so clients don't all return at the reset instant."""
    connect_retry_wait: float = 0.25
    min_attempt_time: float = 1.0
    """No attempt starts with less than this many seconds left before the deadline."""
    deadline: float | None = 600.0
    """Seconds for the whole call, all retries included (None: only the caller's cancel scope)."""
    ttft_timeout: float | None = 60.0
    """Streams: seconds until the first content event (300 s suits local servers loading a model)."""
    idle_timeout: float | None = 60.0
    """Streams: seconds allowed between two complete events after the first."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)


def retries_allowed(exc: BaseException, policy: RetryPolicy) -> int:
    """How many retries this kind of failure deserves on the same deployment (read from the fault table)."""
    fault = fault_of(exc)
    if fault.retries == "none" or not getattr(exc, "retryable", False):
        return 0
    return min(1, policy.max_retries) if fault.retries == "once" else policy.max_retries


def _error_of(state: RetryCallState) -> BaseException | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    return outcome.exception()


# ------------------------------------------------------------------------------------- waits
# A wait strategy returns seconds, or None for "not mine: ask the next one" (see `wait_first`).

WaitStrategy = Callable[[RetryCallState], "float | None"]


def wait_first(*strategies: WaitStrategy) -> Callable[[RetryCallState], float]:
    """The first strategy with an answer wins; 0 if none has one."""

    def wait(state: RetryCallState) -> float:
        for strategy in strategies:
            seconds = strategy(state)
            if seconds is not None:
                return seconds
        return 0.0

    return wait


def wait_server_hint(policy: RetryPolicy) -> WaitStrategy:
    """The server's hint (already parsed in P3 order) plus 0–10 % jitter; infinite beyond the cap,
    which makes the stop strategy fail over at once instead of sleeping."""

    def wait(state: RetryCallState) -> float | None:
        error = _error_of(state)
        hint = getattr(error, "retry_after", None)
        if not isinstance(hint, (int, float)) or not math.isfinite(hint) or hint <= 0:
            return None
        if hint > policy.hint_cap:
            return INF
        return float(hint) * (1.0 + policy.rng.uniform(0.0, policy.hint_jitter))

    return wait


def wait_fixed_for_kind(policy: RetryPolicy) -> WaitStrategy:
    """The fault table's fixed waits: a short pause after a connect/DNS failure (never sent); the
    first retry at once after a reset before the headers (likely a stale keep-alive connection)."""

    def wait(state: RetryCallState) -> float | None:
        error = _error_of(state)
        rule = fault_of(error).wait if error is not None else "none"
        if rule == "connect_pause":
            return policy.connect_retry_wait
        if rule == "immediate_then_backoff" and state.attempt_number == 1:
            return 0.0
        return None

    return wait


def wait_backoff(policy: RetryPolicy) -> WaitStrategy:
    """Full jitter: uniform(0, min(cap, base·2ⁿ)) for retry n (0-based); 429s wait at least the floor."""

    def wait(state: RetryCallState) -> float:
        n = state.attempt_number - 1
        ceiling = min(policy.backoff_cap, policy.backoff_base * (2**n))
        seconds = policy.rng.uniform(0.0, ceiling)
        if isinstance(_error_of(state), RateLimitError):
            seconds = max(seconds, policy.rate_limit_floor)
        return seconds

    return wait


def default_wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    return wait_first(wait_server_hint(policy), wait_fixed_for_kind(policy), wait_backoff(policy))


# -------------------------------------------------------------------------------- retry budget


class RetryBudget:
    """gRPC A6 retry throttling, one per endpoint: failures cost a token, successes earn
    `token_ratio`; retries (and hedges) are allowed only while more than half the tokens remain."""

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self._tokens = max_tokens
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        return self._tokens

    def allows_retry(self) -> bool:
        return self._tokens > self.max_tokens / 2

    def record_failure(self) -> None:
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def record_success(self) -> None:
        with self._lock:
            self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def spend(self) -> bool:
        """Take a token for a hedge; False (nothing taken) when retries are throttled."""
        with self._lock:
            if self._tokens <= self.max_tokens / 2:
                return False
            self._tokens -= 1.0
            return True

    def __repr__(self) -> str:
        return f"RetryBudget(tokens={self._tokens:.1f}/{self.max_tokens:g})"


def is_budget_failure(exc: BaseException) -> bool:
    """Failures that cost the endpoint a budget token: the retryable ones."""
    return isinstance(exc, ModelMixError) and retries_allowed(exc, _ONE_RETRY) > 0


_ONE_RETRY = RetryPolicy(max_retries=1, rng=random.Random(0))
