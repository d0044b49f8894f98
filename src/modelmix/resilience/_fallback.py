"""`FallbackModel`: try models in order within one deadline, moving on as the fault table says.

A chain's call is one `CallPlan` with a leg per member: a retrying member contributes its retry
policy, breaker and budget to the plan rather than running a plan of its own, so one state
machine sees every attempt, wait and move of the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from typing_extensions import Unpack

from .._exceptions import ConfigurationError, ModelMixError
from .._messages import MessagesInput
from .._model import Model
from .._response import ChatResponse
from .._settings import Settings, check_settings, depends_on_server_state
from .._streaming import AsyncStream, Stream
from ._arguments import check_breaker_config, check_models, check_seconds
from ._breaker import BreakerConfig, CircuitBreaker
from ._clock import SYSTEM_CLOCK, Clock, effective_deadline
from ._drivers import PlannedModel
from ._endpoints import EndpointRegistry, registry
from ._faults import fault_of
from ._planner import CallPlan, ChainRules, Leg
from ._policy import RetryPolicy
from ._retrying import ResilientModel, circuit_breaker

__all__ = ["FallbackModel", "fallback", "should_fall_back"]

FallbackPredicate = Callable[[ModelMixError], "bool | None"]
"""Decides whether an error moves the chain on: True/False, or None for the default rule."""


def should_fall_back(error: BaseException, *, on_content_filter: bool = False) -> bool:
    """The default rule, read from the fault table: which failures move the chain to the next model.

    A context-window overflow moves on only to models with a larger window (the chain checks);
    a rejected prompt only with ``on_content_filter=True``.
    """
    rule = fault_of(error).fall_back
    return rule in ("yes", "larger_window") or (rule == "opt_in" and on_content_filter)


class FallbackModel(PlannedModel):
    """Models tried in order; the first answer wins. See `fallback`."""

    provider = "fallback"

    def __init__(
        self,
        models: Sequence[Model],
        *,
        deadline: float | None = 600.0,
        min_attempt_time: float = 1.0,
        fall_back_on: FallbackPredicate | None = None,
        fallback_on_content_filter: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not models:
            raise ConfigurationError("fallback() needs at least one model")
        check_models("fallback", models)
        check_seconds("fallback", "deadline", deadline, optional=True)
        check_seconds("fallback", "min_attempt_time", min_attempt_time, zero=True)
        self.models: list[Model] = list(models)
        self.name = ",".join(f"{m.provider}:{m.name}" for m in self.models)
        self.settings = {}
        self.deadline = deadline
        self.min_attempt_time = min_attempt_time
        self.fall_back_on = fall_back_on
        self.fallback_on_content_filter = fallback_on_content_filter
        self.clock = clock or SYSTEM_CLOCK

    @property
    def context_window(self) -> int | None:
        windows = [m.context_window for m in self.models if m.context_window is not None]
        return max(windows) if windows else None

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Each member's circuit breaker (by ``provider:name``), for inspection."""
        return {
            f"{m.provider}:{m.name}": m.breaker
            for m in self.models
            if isinstance(m, ResilientModel) and m.breaker is not None
        }

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Every member must take the call's settings: checked before the first member is called."""
        check_settings(settings)
        if len(self.models) > 1 and depends_on_server_state(settings):
            raise ConfigurationError(
                "extra_body previous_response_id/conversation continue state stored on one server, which "
                "the other members of this fallback chain don't hold; send such a call to the model that "
                "stored it, not through a chain"
            )
        for position, member in enumerate(self.models, start=1):
            try:
                member.check_settings(settings)
            except ConfigurationError as refused:
                raise ConfigurationError(
                    f"fallback member {position} ({member.provider}:{member.name}) can't take this call's "
                    f"settings, so the chain refuses them before calling any member: {refused} — to give an "
                    "option only to the members that take it, set it on those models, e.g. "
                    "mm.model('openai:gpt-4o', settings={'extra_body': {...}})"
                ) from refused

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        self.check_settings(settings)
        return super().chat(messages, **settings)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        self.check_settings(settings)
        return await super().achat(messages, **settings)

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        self.check_settings(settings)
        return super().stream(messages, **settings)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        self.check_settings(settings)
        return super().astream(messages, **settings)

    def close(self) -> None:
        for member in self.models:
            member.close()

    async def aclose(self) -> None:
        for member in self.models:
            await member.aclose()

    def __repr__(self) -> str:
        return f"<FallbackModel {self.name}>"

    def _falls_back(self, error: ModelMixError) -> bool:
        if self.fall_back_on is not None:
            verdict = self.fall_back_on(error)
            if verdict is not None:
                return verdict
        return should_fall_back(error, on_content_filter=self.fallback_on_content_filter)

    def _leg(self, member: Model) -> Leg:
        if isinstance(member, ResilientModel):
            return member.leg()
        # Any other model (a hedge, a nested chain, a plain model) runs once per call, as it is.
        policy = RetryPolicy(max_retries=0, deadline=None, ttft_timeout=None, idle_timeout=None, min_attempt_time=0.0)
        return Leg(member, policy)

    def _plan(self, messages: MessagesInput, *, in_async: bool, streaming: bool = False) -> CallPlan:
        deadline = effective_deadline(self.clock, self.deadline, in_async=in_async)
        rules = ChainRules(min_attempt_time=self.min_attempt_time, falls_back=self._falls_back, name=self.name)
        legs = [self._leg(member) for member in self.models]
        return CallPlan(legs, deadline, self.clock, messages, chain=rules, streaming=streaming, store_io=not in_async)


def fallback(
    *models: Model | str,
    deadline: float | None = 600.0,
    min_attempt_time: float = 1.0,
    fall_back_on: FallbackPredicate | None = None,
    fallback_on_content_filter: bool = False,
    breakers: bool = True,
    breaker_config: BreakerConfig | None = None,
    clock: Clock | None = None,
    endpoints: EndpointRegistry | None = None,
) -> FallbackModel:
    """A chain: ``mm.fallback("azure:gpt-4o", "openai:gpt-4o-mini", "ollama:llama3.2", deadline=30)``.

    Each model (strings are built with `modelmix.model`, so they retry by default) is tried in
    order under one `deadline` (seconds, also bounded by the caller's cancel scope). A model's
    failure moves on when `fall_back_on` says so, else per the fault matrix: transport errors,
    5xx, 429s, auth/not-found, open circuits and pre-commit stream failures move on; a context
    window overflow moves only to models with a larger ``context_window``; a content-filter
    rejection stops unless ``fallback_on_content_filter=True``. When every model fails the error
    is an `AllModelsFailedError` (an ExceptionGroup).

    ``breakers=True`` (default) puts each model behind its endpoint's circuit breaker.
    """
    from .._registry import model as build

    check_models("fallback", models)
    check_seconds("fallback", "deadline", deadline, optional=True)
    check_seconds("fallback", "min_attempt_time", min_attempt_time, zero=True)
    check_breaker_config("fallback", breaker_config)
    built: list[Model] = []
    table = endpoints or registry
    for item in models:
        member = build(item) if isinstance(item, str) else item
        if breakers:
            member = circuit_breaker(
                member, config=breaker_config, clock=clock, endpoints=table, min_attempt_time=min_attempt_time
            )
        elif clock is not None and isinstance(member, ResilientModel):
            member = member.replace(clock=clock)
        built.append(member)
    return FallbackModel(
        built,
        deadline=deadline,
        min_attempt_time=min_attempt_time,
        fall_back_on=fall_back_on,
        fallback_on_content_filter=fallback_on_content_filter,
        clock=clock,
    )
