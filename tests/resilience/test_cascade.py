"""`mm.cascade`: the cheap tier first, escalation when its answer is not accepted."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

import modelmix as mm
from modelmix import ChatResponse, Message, Usage
from modelmix.resilience._budget import budget
from modelmix.resilience._cascade import CascadeResponse, cascade
from modelmix.testing import FakeReply, FunctionModel

mm.register_model_info("cascade-cheap", mm.ModelInfo(context_window=4_000, input_per_mtok=1.0, output_per_mtok=2.0))
mm.register_model_info("cascade-strong", mm.ModelInfo(context_window=8_000, input_per_mtok=10.0, output_per_mtok=30.0))
MICRO = Decimal("0.000001")


def tier(name: str, text: str, usage: tuple[int, int] = (100, 20), **reply: Any) -> FunctionModel:
    def answer(messages: Sequence[Message], settings: Any) -> ChatResponse | FakeReply:
        if reply:
            return FakeReply(text, **reply)
        return ChatResponse(
            message=Message(role="assistant", content=text),
            finish_reason="stop",
            provider="function",
            model=name,
            usage=Usage(input_tokens=usage[0], output_tokens=usage[1]),
        )

    return FunctionModel(answer, name=name)


def confident(response: ChatResponse) -> bool:
    return "not sure" not in response.text


async def ask(model: mm.Model, mode: str, prompt: str = "What is 2 + 2?") -> CascadeResponse:
    if mode == "sync":
        response = model.chat(prompt)
    elif mode == "async":
        response = await model.achat(prompt)
    elif mode == "stream":
        with model.stream(prompt) as s:
            assert "".join(s.text_deltas())
        response = s.response
    else:
        async with model.astream(prompt) as a:
            assert "".join([d async for d in a.text_deltas()])
        response = a.response
    assert isinstance(response, CascadeResponse)
    return response


@pytest.fixture(params=["sync", "async", "stream", "astream"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_an_accepted_cheap_answer_is_kept_and_the_saving_reported(mode: str) -> None:
    cheap, strong = tier("cascade-cheap", "4"), tier("cascade-strong", "Four.")
    response = await ask(cascade(cheap, strong, accept=confident), mode)

    assert (response.text, response.tier, response.accepted) == ("4", 0, True)
    assert strong.calls == []
    assert response.answer_cost == 140 * MICRO  # 100 × 1 µ$ + 20 × 2 µ$
    assert response.strongest_cost == 1_600 * MICRO  # the same usage at the strong tier's list price
    assert response.cost_saved == 1_460 * MICRO
    assert [(a.model, a.error) for a in response.attempts] == [("cascade-cheap", None)]


async def test_a_rejected_answer_escalates(mode: str) -> None:
    cheap, strong = tier("cascade-cheap", "I'm not sure."), tier("cascade-strong", "Four.", usage=(100, 10))
    response = await ask(cascade(cheap, strong, accept=confident), mode)

    assert (response.text, response.tier, response.accepted) == ("Four.", 1, True)
    assert [(a.model, a.error, a.phase) for a in response.attempts] == [
        ("cascade-cheap", "NotAccepted", "not_accepted"),
        ("cascade-strong", None, None),
    ]
    assert response.usage == Usage(input_tokens=200, output_tokens=30)
    assert Decimal(str(response.cost)) == (140 + 1_300) * MICRO  # the whole cascade
    assert response.answer_cost == 1_300 * MICRO
    assert response.cost_saved == -140 * MICRO  # escalating cost the cheap attempt on top


async def test_when_no_answer_is_accepted_the_last_one_is_returned_marked(mode: str) -> None:
    model = cascade(tier("cascade-cheap", "not sure"), tier("cascade-strong", "still not sure"), accept=confident)
    response = await ask(model, mode)
    assert (response.text, response.tier, response.accepted) == ("still not sure", 1, False)


async def test_a_failing_tier_escalates_like_a_fallback_chain(mode: str) -> None:
    broken = tier("cascade-cheap", "overloaded", status=503)
    response = await ask(cascade(broken, tier("cascade-strong", "Four."), accept=confident), mode)
    assert response.tier == 1
    assert [(a.model, a.error) for a in response.attempts] == [
        ("cascade-cheap", "ServerError"),
        ("cascade-strong", None),
    ]


async def test_a_caller_error_is_not_escalated() -> None:
    bad = tier("cascade-cheap", "bad request", status=400)
    strong = tier("cascade-strong", "Four.")
    with pytest.raises(mm.BadRequestError) as raised:
        cascade(bad, strong, accept=confident).chat("hi")
    assert strong.calls == []
    assert [a.error for a in raised.value.attempts] == ["BadRequestError"]


async def test_an_async_judge_works_with_achat_and_is_refused_by_chat() -> None:
    async def judge(response: ChatResponse) -> bool:
        return confident(response)

    model = cascade(tier("cascade-cheap", "not sure"), tier("cascade-strong", "Four."), accept=judge)
    assert (await model.achat("hi")).text == "Four."
    with pytest.raises(mm.ConfigurationError, match="async judge needs achat"):
        model.chat("hi")


def test_arguments_are_checked() -> None:
    with pytest.raises(mm.ConfigurationError, match="at least two models"):
        cascade(tier("cascade-cheap", "x"), accept=confident)
    with pytest.raises(mm.ConfigurationError, match="accept= must be a function"):
        cascade(tier("cascade-cheap", "x"), tier("cascade-strong", "y"), accept="yes")  # type: ignore[arg-type]


async def test_a_budget_guards_each_tier() -> None:
    cheap, strong = tier("cascade-cheap", "not sure", usage=(10, 10)), tier("cascade-strong", "Four.")
    guarded = budget(cascade(cheap, strong, accept=confident), max_usd="0.0005")

    response = guarded.chat("hi", max_tokens=20)
    assert isinstance(response, CascadeResponse)

    # The strong tier's worst case does not fit what is left: the cheap answer is all there is.
    assert (response.text, response.accepted) == ("not sure", False)
    assert strong.calls == []
    assert [a.error for a in response.attempts] == ["NotAccepted", "BudgetExceededError"]
    assert guarded.spent == 30 * MICRO
