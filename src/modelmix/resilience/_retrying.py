"""`ResilientModel`: one deployment with retries (tenacity), a deadline, stream timeouts, a retry
budget and optionally a circuit breaker. `retrying()` and `circuit_breaker()` build it.

Its calls are a `CallPlan` with one leg, carried out by the shared drivers."""

from __future__ import annotations

from typing import Any

from .._exceptions import ConfigurationError
from .._messages import MessagesInput
from .._model import Model
from ._arguments import check_breaker_config, check_count, check_models, check_seconds
from ._breaker import BreakerConfig, CircuitBreaker
from ._clock import SYSTEM_CLOCK, Clock, effective_deadline
from ._drivers import PlannedModel
from ._endpoints import EndpointRegistry, registry
from ._planner import CallPlan, Leg
from ._policy import RetryBudget, RetryPolicy
from ._wrapper import WrapperModel

__all__ = ["ResilientModel", "circuit_breaker", "retrying"]


class ResilientModel(WrapperModel, PlannedModel):
    """A model whose calls retry (retryable errors, backoff, server hints, budget) within one deadline.

    It is a `Model` itself, so it composes (fallback chains, hedging). `wrapped` is the model it
    wraps; ``unwrap()`` reaches the provider's model (``base_url``...).
    """

    def __init__(
        self,
        inner: Model,
        *,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        use_budget: bool = True,
        clock: Clock | None = None,
        endpoints: EndpointRegistry | None = None,
        log_content: bool = False,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self.clock = clock or SYSTEM_CLOCK
        self.endpoints = endpoints or registry
        if budget is None and use_budget:
            budget = self.endpoints.budget(inner.endpoint)
        self.budget = budget
        self.breaker = breaker
        self.log_content = log_content

    @property
    def inner(self) -> Model:
        """The wrapped model (the older name of `wrapped`)."""
        return self.wrapped

    def replace(self, **changes: Any) -> ResilientModel:
        """A copy with some options changed (``policy``, ``breaker``, ``clock``...)."""
        options: dict[str, Any] = {
            "policy": self.policy,
            "breaker": self.breaker,
            "budget": self.budget,
            "use_budget": self.budget is not None,
            "clock": self.clock,
            "endpoints": self.endpoints,
            "log_content": self.log_content,
        }
        options.update(changes)
        inner = options.pop("inner", self.wrapped)
        return ResilientModel(inner, **options)

    def leg(self) -> Leg:
        """This model as one leg of a call plan (a fallback chain runs its members' legs itself)."""
        return Leg(self.wrapped, self.policy, self.breaker, self.budget, self.log_content)

    def __repr__(self) -> str:
        extra = f" breaker={self.breaker.state(self.clock.now()).value}" if self.breaker else ""
        return (
            f"<ResilientModel {self.provider}:{self.name} retries={self.policy.max_retries}{extra} of {self.wrapped!r}>"
        )

    def _plan(self, messages: MessagesInput, *, in_async: bool, streaming: bool = False) -> CallPlan:
        deadline = effective_deadline(self.clock, self.policy.deadline, in_async=in_async)
        return CallPlan([self.leg()], deadline, self.clock, messages, streaming=streaming)


def retrying(
    model: Model | str,
    *,
    max_retries: int = 2,
    deadline: float | None = 600.0,
    ttft_timeout: float | None = 60.0,
    idle_timeout: float | None = 60.0,
    min_attempt_time: float = 1.0,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    budget: RetryBudget | None = None,
    use_budget: bool = True,
    log_content: bool = False,
    **options: Any,
) -> ResilientModel:
    """Retry `model` by the documented policy: the retryable set, full-jitter backoff, server hints
    (``retry-after-ms`` → ``x-ms-retry-after-ms`` → ``Retry-After``), ``x-should-retry``, a
    per-endpoint retry budget, all inside one `deadline` (seconds).

    A string is built with `modelmix.model` first (``options`` go to the provider).
    """
    check_models("retrying", [model])
    if policy is None:
        check_count("retrying", "max_retries", max_retries)
        check_seconds("retrying", "deadline", deadline, optional=True)
        check_seconds("retrying", "ttft_timeout", ttft_timeout, optional=True)
        check_seconds("retrying", "idle_timeout", idle_timeout, optional=True)
        check_seconds("retrying", "min_attempt_time", min_attempt_time, zero=True)
    if isinstance(model, str):
        from .._registry import model as build

        model = build(model, max_retries=0, **options)
    elif options:
        raise ConfigurationError(
            f"retrying() got option(s) {', '.join(map(repr, sorted(options)))}: provider options apply only "
            "when a model string is given; pass them to mm.model(...) instead"
        )
    if policy is None:
        policy = RetryPolicy(
            max_retries=max_retries,
            deadline=deadline,
            ttft_timeout=ttft_timeout,
            idle_timeout=idle_timeout,
            min_attempt_time=min_attempt_time,
        )
    if isinstance(model, ResilientModel):
        # Same kind of wrapper: this retry policy replaces the one inside (no retries of retries),
        # and everything else it does stays — its circuit breaker above all.
        return model.replace(
            policy=policy,
            clock=clock or model.clock,
            budget=budget if budget is not None else (model.budget if use_budget else None),
            use_budget=use_budget,
            log_content=log_content or model.log_content,
        )
    return ResilientModel(
        model, policy=policy, clock=clock, budget=budget, use_budget=use_budget, log_content=log_content
    )


def circuit_breaker(
    model: Model | str,
    *,
    config: BreakerConfig | None = None,
    breaker: CircuitBreaker | None = None,
    clock: Clock | None = None,
    endpoints: EndpointRegistry | None = None,
    min_attempt_time: float = 1.0,
) -> ResilientModel:
    """Guard `model` with its endpoint's circuit breaker (see Deadlines, circuit breakers and hedging).

    Inside a retrying model the breaker sees every attempt; the breaker is shared by every
    wrapper of the same (endpoint, model) unless one is passed. Inspect it with ``.breaker``.
    """
    check_models("circuit_breaker", [model])
    check_breaker_config("circuit_breaker", config)
    check_seconds("circuit_breaker", "min_attempt_time", min_attempt_time, zero=True)
    if isinstance(model, str):
        from .._registry import model as build

        model = build(model)
    table = endpoints or (model.endpoints if isinstance(model, ResilientModel) else registry)
    if isinstance(model, ResilientModel):
        existing = model.breaker
        if existing is not None and (
            (breaker is not None and breaker is not existing) or (config is not None and config != existing.config)
        ):
            # Swapping the breaker would silently drop the state and thresholds the inner one has.
            raise ConfigurationError(
                f"{model.provider}:{model.name} already has a circuit breaker ({existing.name}); "
                "pass that one (or none) instead of a different breaker or config"
            )
        chosen = existing or breaker or table.breaker(model.endpoint, model.name, config)
        return model.replace(breaker=chosen, clock=clock or model.clock, endpoints=table)
    chosen = breaker or table.breaker(model.endpoint, model.name, config)
    return ResilientModel(
        model,
        policy=RetryPolicy(max_retries=0, min_attempt_time=min_attempt_time),
        breaker=chosen,
        clock=clock,
        endpoints=table,
    )
