"""The call planner on its own: no model is called, no time passes — actions in, outcomes out."""

from __future__ import annotations

import random

import pytest

import modelmix as mm
from modelmix._response import ChatResponse
from modelmix.resilience import RetryBudget, RetryPolicy
from modelmix.resilience._clock import effective_deadline
from modelmix.resilience._planner import AskBreaker, Call, CallPlan, ChainRules, GiveUp, Leg, Sleep
from modelmix.testing import FunctionModel

from .conftest import FakeClock


def _model(name: str) -> FunctionModel:
    return FunctionModel(lambda messages, settings: "ok", name=name)


def _policy(**changes: object) -> RetryPolicy:
    options: dict[str, object] = {"max_retries": 2, "min_attempt_time": 0.05, "deadline": 30.0}
    options.update(changes)
    return RetryPolicy(rng=random.Random(3), **options)  # type: ignore[arg-type]


def _answer(name: str) -> ChatResponse:
    return _model(name).chat("hi")  # a real response, made without the plan


def test_a_retry_is_a_sleep_then_a_call_on_the_same_leg() -> None:
    clock = FakeClock()
    leg = Leg(_model("a"), _policy())
    plan = CallPlan([leg], effective_deadline(clock, 30.0, in_async=False), clock, "hi")
    first = plan.next()
    assert isinstance(first, Call)
    assert first.leg is leg
    assert first.retry_no == 0
    plan.failed(first, mm.ServerError("down", status=503))
    wait = plan.next()
    assert isinstance(wait, Sleep)
    assert 0 <= wait.seconds <= 0.5
    retry = plan.next()
    assert isinstance(retry, Call)
    assert retry.retry_no == 1
    response = plan.succeeded(retry, _answer("a"))
    assert [(a.retry_no, a.error) for a in response.attempts] == [(0, "ServerError"), (1, None)]


def test_a_chain_moves_on_without_sleeping_and_gives_up_with_every_error() -> None:
    clock = FakeClock()
    legs = [Leg(_model("a"), _policy(max_retries=0)), Leg(_model("b"), _policy(max_retries=0))]
    rules = ChainRules(min_attempt_time=0.05, falls_back=mm.resilience.should_fall_back, name="a,b")
    plan = CallPlan(legs, effective_deadline(clock, 30.0, in_async=False), clock, "hi", chain=rules)
    for label in "ab":
        call = plan.next()
        assert isinstance(call, Call)
        assert call.leg.model.name == label
        plan.failed(call, mm.RateLimitError("slow down", status=429))
    end = plan.next()
    assert isinstance(end, GiveUp)
    assert isinstance(end.error, mm.AllModelsFailedError)
    assert [a.model for a in end.error.attempts] == ["a", "b"]


def test_a_spent_budget_ends_the_leg_with_its_own_error() -> None:
    clock = FakeClock()
    budget = RetryBudget()
    for _ in range(5):
        budget.record_failure()
    plan = CallPlan(
        [Leg(_model("a"), _policy(), budget=budget)], effective_deadline(clock, 30.0, in_async=False), clock, "hi"
    )
    call = plan.next()
    assert isinstance(call, Call)
    cause = mm.ServerError("down", status=500)
    plan.failed(call, cause)
    end = plan.next()
    assert isinstance(end, GiveUp)
    assert isinstance(end.error, mm.RetryBudgetExhaustedError)
    assert end.error.__cause__ is cause


def test_cancellation_ends_the_plan_as_it_is() -> None:
    clock = FakeClock()
    plan = CallPlan([Leg(_model("a"), _policy())], effective_deadline(clock, 30.0, in_async=False), clock, "hi")
    call = plan.next()
    assert isinstance(call, Call)
    cancelled = KeyboardInterrupt()
    plan.failed(call, cancelled)
    end = plan.next()
    assert isinstance(end, GiveUp)
    assert end.error is cancelled


class _StoreBackedBreaker(mm.resilience.CircuitBreaker):
    """A breaker whose verdict needs a store's round trip: the plan must hand the question out."""

    def decides_locally(self, now: float, *, ignore_cooldown: bool = False) -> bool:
        return False

    def admit(self, now: float, *, ignore_cooldown: bool = False) -> None:
        raise AssertionError("the plan asked the store itself")


def test_a_breaker_that_must_ask_its_store_is_a_question_for_the_driver() -> None:
    clock = FakeClock()
    breaker = _StoreBackedBreaker("a at e")
    leg = Leg(_model("a"), _policy(), breaker)
    plan = CallPlan([leg], effective_deadline(clock, 30.0, in_async=False), clock, "hi")
    ask = plan.next()
    assert isinstance(ask, AskBreaker)
    assert ask.breaker is breaker
    assert not ask.ignore_cooldown
    with pytest.raises(RuntimeError, match="outcome"):
        plan.next()  # nothing to do until the answer comes
    plan.breaker_said("probe")
    call = plan.next()
    assert isinstance(call, Call)
    assert call.probe


def test_a_refusal_from_the_store_ends_the_call_with_the_breakers_error() -> None:
    clock = FakeClock()
    breaker = _StoreBackedBreaker("a at e")
    leg = Leg(_model("a"), _policy(), breaker)
    plan = CallPlan([leg], effective_deadline(clock, 30.0, in_async=False), clock, "hi")
    assert isinstance(plan.next(), AskBreaker)
    plan.breaker_said(None)
    end = plan.next()
    assert isinstance(end, GiveUp)
    assert isinstance(end.error, mm.CircuitOpenError)
    with pytest.raises(RuntimeError, match="without an AskBreaker"):
        plan.breaker_said("call")
