"""`mm.budget`: worst case reserved before sending, real cost charged after, never overspent."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import modelmix as mm
from modelmix import ChatResponse, Message, Usage
from modelmix.resilience._budget import BudgetModel, budget
from modelmix.resilience._ledger import BudgetExceededError
from modelmix.testing import FakeReply, FunctionModel

# USD per million tokens: a prompt token costs 1 µ$, an answer token 2 µ$ (cheap); ten times that (dear).
mm.register_model_info("budget-cheap", mm.ModelInfo(context_window=4_000, input_per_mtok=1.0, output_per_mtok=2.0))
mm.register_model_info("budget-dear", mm.ModelInfo(context_window=8_000, input_per_mtok=10.0, output_per_mtok=20.0))
MICRO = Decimal("0.000001")


def answer(text: str = "ok", input_tokens: int = 5, output_tokens: int = 10) -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", content=text),
        finish_reason="stop",
        provider="function",
        model="budget-cheap",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


def cheap(script: Any = None, name: str = "budget-cheap") -> FunctionModel:
    """A priced fake: `script` is one reply or a list served in turn (the last one repeating)."""
    replies = list(script) if isinstance(script, list) else [answer() if script is None else script]

    def reply(messages: Sequence[Message], settings: Any) -> str | FakeReply | ChatResponse:
        return replies.pop(0) if len(replies) > 1 else replies[0]

    return FunctionModel(reply, name=name)


async def call(model: mm.Model, mode: str, prompt: str = "hi", **settings: Any) -> ChatResponse:
    if mode == "sync":
        return model.chat(prompt, **settings)
    return await model.achat(prompt, **settings)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_the_real_cost_is_charged_and_the_rest_of_the_reservation_refunded(mode: str) -> None:
    model = budget(cheap(), max_usd="0.01")

    response = await call(model, mode, max_tokens=100)

    assert response.text == "ok"
    assert model.spent == 25 * MICRO  # 5 prompt tokens × 1 µ$ + 10 answer tokens × 2 µ$
    assert model.reserved == 0
    assert model.left == Decimal("0.01") - 25 * MICRO


async def test_a_call_whose_worst_case_does_not_fit_is_refused_with_nothing_sent(mode: str) -> None:
    inner = cheap()
    model = budget(inner, max_usd="0.001")
    await call(model, mode, max_tokens=10)

    with pytest.raises(BudgetExceededError) as raised:
        await call(model, mode, "hello " * 100, max_tokens=1_000)

    assert len(inner.calls) == 1  # only the first call reached the model
    error = raised.value
    assert error.spent == 25 * MICRO
    assert error.reserved == 0
    assert error.left == Decimal("0.001") - 25 * MICRO
    assert error.needed is not None
    assert error.needed > error.left
    message = str(error)
    assert "function:budget-cheap" in message
    assert f"may cost up to ${error.needed:.4f}" in message
    assert "+ 1000 answer tokens (max_tokens) at list price" in message
    assert "and $0.000975 of $0.001 is left ($0.000025 spent, $0.00 reserved by calls in flight)" in message
    assert "nothing was sent" in message
    assert model.spent == 25 * MICRO
    assert model.reserved == 0


async def test_a_failed_call_is_refunded_in_full(mode: str) -> None:
    model = budget(cheap(FakeReply("busy", status=500)), max_usd=1)

    with pytest.raises(mm.ServerError):
        await call(model, mode, max_tokens=10)

    assert (model.spent, model.reserved) == (Decimal(0), Decimal(0))


async def test_a_failed_structured_output_is_charged_what_it_consumed(mode: str) -> None:
    model = budget(cheap(answer("not json")), max_usd=1)

    with pytest.raises(mm.OutputValidationError):
        await call(model, mode, max_tokens=10, output=dict[str, int], output_retries=1)

    assert model.spent == 2 * 25 * MICRO  # both attempts consumed tokens
    assert model.reserved == 0


async def test_every_retry_reserves_again(mode: str) -> None:
    inner = cheap([FakeReply("busy", status=500), answer()])
    model = budget(mm.retrying(inner, max_retries=1, clock=_NoSleep()), max_usd=1)

    response = await call(model, mode, max_tokens=10)

    assert response.text == "ok"
    assert model.spent == 25 * MICRO
    assert model.reserved == 0


async def test_unknown_prices_are_refused_unless_allowed(mode: str) -> None:
    unpriced = cheap(name="budget-unpriced-model")

    with pytest.raises(BudgetExceededError, match="its prices are unknown") as raised:
        await call(budget(unpriced, max_usd=1), mode, max_tokens=10)
    assert raised.value.needed is None
    assert unpriced.calls == []

    allowed = budget(unpriced, max_usd=1, allow_unpriced=True)
    assert (await call(allowed, mode, max_tokens=10)).text == "ok"
    assert (allowed.spent, allowed.reserved) == (Decimal(0), Decimal(0))


async def test_an_answer_of_unknown_length_is_bounded_by_the_window(mode: str) -> None:
    model = budget(cheap(), max_usd="0.001")  # a 4,000-token window: up to ~8,000 µ$ of answer

    with pytest.raises(BudgetExceededError, match=r"answer tokens \(the rest of the context window\)"):
        await call(model, mode)
    assert (await call(budget(cheap(), max_usd="0.01"), mode)).text == "ok"


async def test_no_bound_on_the_answer_is_a_configuration_error(mode: str) -> None:
    mm.register_model_info("budget-windowless", mm.ModelInfo(input_per_mtok=1.0, output_per_mtok=1.0))
    model = budget(cheap(name="budget-windowless"), max_usd=1)

    with pytest.raises(mm.ConfigurationError, match="set max_tokens"):
        await call(model, mode)
    assert (await call(model, mode, max_tokens=5)).text == "ok"


async def test_a_chain_falls_through_to_a_cheaper_member_that_fits(mode: str) -> None:
    dear = cheap(answer("dear"), name="budget-dear")
    thrifty = cheap(answer("cheap"))
    model = budget(mm.fallback(dear, thrifty), max_usd="0.005")

    response = await call(model, mode, "x " * 100, max_tokens=200)

    assert response.text == "cheap"
    assert dear.calls == []
    assert [(a.model, a.error) for a in response.attempts] == [
        ("budget-dear", "BudgetExceededError"),
        ("budget-cheap", None),
    ]
    assert model.spent == 25 * MICRO


async def test_a_chain_none_of_whose_members_fit_raises_one_budget_error(mode: str) -> None:
    model = budget(mm.fallback(cheap(name="budget-dear"), cheap()), max_usd="0.0001")

    with pytest.raises(BudgetExceededError, match="no model of the chain fits the budget") as raised:
        await call(model, mode, max_tokens=1_000)

    assert [a.error for a in raised.value.attempts] == ["BudgetExceededError", "BudgetExceededError"]
    assert "function:budget-dear needs $" in str(raised.value)


async def test_streams_reserve_before_opening_and_settle_at_the_end(mode: str) -> None:
    model = budget(cheap(), max_usd="0.01")

    if mode == "sync":
        with model.stream("hi", max_tokens=10) as s:
            text = "".join(s.text_deltas())
    else:
        async with model.astream("hi", max_tokens=10) as a:
            text = "".join([d async for d in a.text_deltas()])

    assert text == "ok"
    assert model.spent == 25 * MICRO
    assert model.reserved == 0


async def test_a_stream_that_reports_no_usage_keeps_its_worst_case(mode: str) -> None:
    model = budget(cheap("plain text, no usage"), max_usd="0.01")

    if mode == "sync":
        with model.stream("hi", max_tokens=10) as s:
            s.until_done()
    else:
        async with model.astream("hi", max_tokens=10) as a:
            await a.until_done()

    assert model.reserved == 0
    assert model.spent > 20 * MICRO  # the bound: the prompt's bytes and framing, and 10 answer tokens


def test_max_usd_must_be_a_positive_amount() -> None:
    for bad in (0, -1, "abc", float("nan"), float("inf"), True, None):
        with pytest.raises(mm.ConfigurationError, match="max_usd"):
            budget(cheap(), max_usd=bad)  # type: ignore[arg-type]
    assert budget(cheap(), max_usd=0.5).max_usd == Decimal("0.5")


# ---------------------------------------------------------------------------- concurrency


def _watching(model_holder: list[BudgetModel], peaks: list[Decimal], lock: threading.Lock) -> Any:
    """An answer function that checks, while the call is in flight, spent + reserved ≤ max."""

    def check() -> None:
        books = model_holder[0].snapshot()
        with lock:
            peaks.append(books.spent + books.reserved)

    return check


async def test_hundreds_of_concurrent_async_calls_never_overspend() -> None:
    peaks: list[Decimal] = []
    holder: list[BudgetModel] = []
    check = _watching(holder, peaks, threading.Lock())

    async def reply(messages: Sequence[Message], settings: Any) -> ChatResponse:
        check()
        await anyio.sleep(0.001)
        check()
        return answer()

    model = budget(FunctionModel(reply, name="budget-cheap"), max_usd="0.005")
    holder.append(model)
    outcomes: list[str] = []

    async def one(n: int) -> None:
        try:
            await model.achat(f"question {n}", max_tokens=20)
        except BudgetExceededError:
            outcomes.append("refused")
        else:
            outcomes.append("ok")

    async with anyio.create_task_group() as group:
        for n in range(400):
            group.start_soon(one, n)

    answered = outcomes.count("ok")
    assert answered + outcomes.count("refused") == 400
    assert 0 < answered < 400
    assert model.spent == answered * 25 * MICRO
    assert model.reserved == 0
    assert max(peaks) <= model.max_usd
    assert model.ledger.peak <= model.max_usd


def test_hundreds_of_concurrent_threads_never_overspend() -> None:
    peaks: list[Decimal] = []
    holder: list[BudgetModel] = []
    check = _watching(holder, peaks, threading.Lock())

    def reply(messages: Sequence[Message], settings: Any) -> ChatResponse:
        check()
        return answer()

    model = budget(FunctionModel(reply, name="budget-cheap"), max_usd="0.003")
    holder.append(model)

    def one(n: int) -> str:
        try:
            model.chat(f"question {n}", max_tokens=20)
        except BudgetExceededError:
            return "refused"
        return "ok"

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(one, range(300)))

    answered = outcomes.count("ok")
    assert 0 < answered < 300
    assert model.spent == answered * 25 * MICRO
    assert model.reserved == 0
    assert max(peaks) <= model.max_usd
    assert model.ledger.peak <= model.max_usd


class _NoSleep(mm.resilience.Clock):
    def sleep(self, seconds: float) -> None:
        return None

    async def asleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()


async def test_a_hedge_guards_its_primary_and_its_backup_at_their_own_prices(mode: str) -> None:
    primary = cheap(FakeReply("busy", status=500))
    backup = cheap(answer("dear"), name="budget-dear")
    model = budget(mm.hedge(primary, backup, after=30.0), max_usd=1)

    response = await call(model, mode, max_tokens=10)

    assert response.text == "dear"
    assert model.spent == 250 * MICRO  # 5 × 10 µ$ + 10 × 20 µ$: the backup's own prices
    assert model.reserved == 0


async def test_budgets_nest_and_each_is_charged(mode: str) -> None:
    team = budget(mm.fallback(cheap(), cheap(name="budget-dear")), max_usd="0.01")
    company = budget(team, max_usd=1)

    await call(company, mode, max_tokens=10)

    assert team.spent == company.spent == 25 * MICRO
    assert team.reserved == company.reserved == 0


async def test_a_cancelled_call_leaves_nothing_reserved_and_keeps_its_worst_case() -> None:
    async def slow(messages: Sequence[Message], settings: Any) -> ChatResponse:
        await anyio.sleep(30)
        return answer()

    model = budget(FunctionModel(slow, name="budget-cheap"), max_usd=1)
    with anyio.move_on_after(0.05):
        await model.achat("hi", max_tokens=10)

    assert model.reserved == 0
    assert model.spent > 20 * MICRO  # it may have been billed: charged its worst case, not refunded
