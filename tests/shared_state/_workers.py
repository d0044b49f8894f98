"""What each worker process of the multi-process tests runs (importable, for the spawn start method).

Every worker builds its own models exactly as an app would and points them at one Redis through
``mm.shared_state``; the parent runs the HTTP server and checks the figures."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import modelmix as mm
from modelmix.resilience import WrapperModel


def _model(base_url: str) -> mm.Model:
    return mm.model("openai:gpt-4o-mini", base_url=base_url, api_key="sk-test", max_retries=0)


def spend(redis_url: str, base_url: str, scope: str, max_usd: str, worker: int) -> list[str]:
    """Call until the shared budget refuses; the real cost of each answered call."""
    store = mm.shared_state(redis_url, prefix=scope)
    model = mm.budget(_model(base_url), max_usd=max_usd, scope=scope)
    costs: list[str] = []
    refusals = 0
    while refusals < 3:
        try:
            response = model.chat(f"worker {worker}: hello", max_tokens=40)
        except mm.BudgetExceededError:
            refusals += 1
            time.sleep(0.01)
            continue
        costs.append(str(response.cost if response.cost is not None else Decimal(0)))
    # Settlements run on the store's worker thread; the pool is terminated (no atexit) once
    # this returns, so wait for them here.
    assert store.flush(10.0)
    return costs


class _Sent(WrapperModel):
    """Notes when each call really leaves for the server (after the rate limit let it go)."""

    def __init__(self, wrapped: mm.Model) -> None:
        super().__init__(wrapped)
        self.sent: list[float] = []

    def chat(self, messages: Any, **settings: Any) -> mm.ChatResponse:
        self.sent.append(time.time())
        return self.wrapped.chat(messages, **settings)

    async def achat(self, messages: Any, **settings: Any) -> mm.ChatResponse:
        raise NotImplementedError

    def stream(self, messages: Any, **settings: Any) -> mm.Stream:
        raise NotImplementedError

    def astream(self, messages: Any, **settings: Any) -> mm.AsyncStream:
        raise NotImplementedError


def use_tokens(
    redis_url: str, base_url: str, scope: str, tpm: int, per: float, seconds: float, worker: int
) -> list[Any]:
    """Call for `seconds` under one shared TPM limit; (sent at, tokens used) per call."""
    mm.shared_state(redis_url, prefix=scope)
    sending = _Sent(_model(base_url))
    model = mm.rate_limit(sending, tpm=tpm, per=per, scope=scope, max_wait=30)
    used: list[int] = []
    end = time.time() + seconds
    while time.time() < end:
        usage = model.chat(f"worker {worker}: hello", max_tokens=40).usage
        used.append(usage.input_tokens + usage.output_tokens if usage else 0)
    return list(zip(sending.sent, used, strict=True))


def hammer(redis_url: str, base_url: str, scope: str, seconds: float, worker: int) -> list[Any]:
    """Call through a shared circuit breaker for `seconds`; (time, outcome) per call."""
    mm.shared_state(redis_url, prefix=scope, staleness=0.5)
    config = mm.resilience.BreakerConfig(consecutive_failures=5, open_base=1.5, jitter=0.0, probe_failures=1)
    model = mm.circuit_breaker(_model(base_url), config=config, min_attempt_time=0)
    outcomes: list[Any] = []
    end = time.time() + seconds
    while time.time() < end:
        try:
            model.chat(f"worker {worker}: hello", max_tokens=5)
            outcomes.append((time.time(), "ok"))
        except mm.CircuitOpenError:
            outcomes.append((time.time(), "open"))
        except mm.ModelMixError as exc:
            outcomes.append((time.time(), type(exc).__name__))
        time.sleep(0.01)
    breaker = model.breaker
    outcomes.append((time.time(), f"probes={getattr(breaker, 'probes', -1)}"))
    return outcomes


def reserve_and_hang(redis_url: str, base_url: str, scope: str, max_usd: str, lease_seconds: float) -> None:
    """Reserve from a shared budget and wait on an answer that never comes, until killed."""
    mm.shared_state(redis_url, prefix=scope)
    model = mm.budget(_model(base_url), max_usd=max_usd, scope=scope, lease_seconds=lease_seconds)
    model.chat("hello", max_tokens=40)
