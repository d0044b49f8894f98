"""Usage and cost summed over every attempt of a call: retries, fallbacks, re-asks and hedges.

`cost` / `usage` are the answer's; `total_cost` / `total_usage` the whole call's, failed attempts
that consumed tokens included. Each `Attempt` records what it consumed where that is known.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix.testing import FakeClock, FakeReply, FunctionModel
from modelmix.tokens import ModelInfo, _catalog, register_model_info


class City(BaseModel):
    name: str


@pytest.fixture(autouse=True)
def prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})
    register_model_info("function:cheap", ModelInfo(input_per_mtok="1", output_per_mtok="2"))
    register_model_info("function:strong", ModelInfo(input_per_mtok="10", output_per_mtok="20"))


CHEAP = Decimal("0.00012")  # 100 x 1 + 10 x 2, per million
STRONG = Decimal("0.0012")  # 100 x 10 + 10 x 20


def _reply(text: str, **options: object) -> FakeReply:
    return FakeReply(text, input_tokens=100, output_tokens=10, **options)  # type: ignore[arg-type]


def test_a_retried_failure_without_usage_adds_nothing() -> None:
    model = FunctionModel([FakeReply("busy", status=500), _reply("ok")], name="cheap")
    response = mm.retrying(model, clock=FakeClock()).chat("hi")
    assert [a.error for a in response.attempts] == ["ServerError", None]
    assert response.attempts[0].usage is None
    assert response.attempts[0].cost is None
    assert response.attempts[1].cost == CHEAP
    assert response.cost == response.total_cost == CHEAP


def test_a_fallback_after_invalid_output_counts_the_tokens_the_failure_consumed() -> None:
    cheap = FunctionModel([_reply("not json")], name="cheap")
    strong = FunctionModel([_reply('{"name": "Paris"}')], name="strong")
    response = mm.fallback(cheap, strong).chat("hi", output=City)
    assert response.output == City(name="Paris")
    failed, answered = response.attempts
    assert (failed.error, failed.usage, failed.cost) == (
        "OutputValidationError",
        mm.Usage(input_tokens=100, output_tokens=10),
        CHEAP,
    )
    assert answered.cost == STRONG
    assert response.cost == STRONG
    assert response.total_cost == CHEAP + STRONG
    assert response.total_usage == mm.Usage(input_tokens=200, output_tokens=20)


def test_an_unpriced_failure_that_consumed_tokens_makes_the_total_unknown() -> None:
    mystery = FunctionModel([_reply("not json")], name="mystery")  # no price registered
    strong = FunctionModel([_reply('{"name": "Paris"}')], name="strong")
    response = mm.fallback(mystery, strong).chat("hi", output=City)
    assert response.cost == STRONG
    assert response.total_cost is None  # never an understated total
    assert response.total_usage == mm.Usage(input_tokens=200, output_tokens=20)


def test_a_re_ask_is_summed_once() -> None:
    model = FunctionModel([_reply("not json"), _reply('{"name": "Paris"}')], name="cheap")
    response = mm.retrying(model, clock=FakeClock()).chat("hi", output=City, output_retries=1)
    assert response.cost == CHEAP + CHEAP  # the re-ask sums stay in `cost`, as before
    assert response.total_cost == response.cost


def test_streams_record_the_answering_attempts_usage_and_the_total() -> None:
    chain = mm.fallback(
        FunctionModel([FakeReply("down", status=503)], name="cheap"), FunctionModel([_reply("ok")], name="strong")
    )
    with chain.stream("hi") as stream:
        stream.until_done()
    response = stream.response
    assert [a.error for a in response.attempts] == ["ServerError", None]
    assert response.attempts[-1].cost == STRONG
    assert response.cost == response.total_cost == STRONG


async def test_a_hedges_failed_primary_is_counted_in_the_total() -> None:
    primary = FunctionModel([_reply("not json")], name="cheap")
    backup = FunctionModel([_reply('{"name": "Paris"}')], name="strong")
    response = await mm.hedge(primary, backup, after=5.0).achat("hi", output=City)
    assert [(a.model, a.error) for a in response.attempts] == [("cheap", "OutputValidationError"), ("strong", None)]
    assert response.cost == STRONG
    assert response.total_cost == CHEAP + STRONG


async def test_a_cancelled_hedge_is_recorded_as_lost() -> None:
    primary = FunctionModel([_reply("slow", delay=5.0)], name="cheap")
    backup = FunctionModel([_reply("fast")], name="strong")
    response = await mm.hedge(primary, backup, after=0.01).achat("hi")
    assert response.text == "fast"
    lost, answered = response.attempts
    assert (lost.model, lost.error, lost.phase, lost.usage) == ("cheap", "lost_hedge", "cancelled", None)
    assert (answered.model, answered.error, answered.cost) == ("strong", None, STRONG)
    # What a cancelled request consumed is unknown to the client: it is not invented.
    assert response.total_cost == STRONG
    async with mm.hedge(
        FunctionModel([_reply("slow", delay=5.0)], name="cheap"),
        FunctionModel([_reply("fast")], name="strong"),
        after=0.01,
    ).astream("hi") as stream:
        await stream.until_done()
    assert [a.error for a in stream.response.attempts] == ["lost_hedge", None]
    assert stream.response.attempts[-1].cost == STRONG


def test_a_stream_cut_after_its_usage_reports_what_it_consumed() -> None:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": "Hel"}}],
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500},
        },
    ]
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)  # no finish reason, no [DONE]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
    )
    model = mm.model(
        "openai:gpt-4o-mini", api_key="sk-test", http_client=httpx.Client(transport=transport), max_retries=0
    )
    with pytest.raises(mm.StreamInterruptedError) as caught, model.stream("hi") as stream:
        stream.until_done()
    assert caught.value.usage == mm.Usage(input_tokens=1000, output_tokens=500)
    assert caught.value.cost == Decimal("0.00045")


def test_a_tool_loop_step_without_a_price_makes_the_runs_cost_unknown() -> None:
    def get_time() -> str:
        """The time."""
        return "noon"

    script = iter([_reply("done")])
    run = mm.run_tools(FunctionModel(lambda messages, settings: next(script), name="mystery"), "go", [get_time])
    assert run.usage is not None
    assert run.cost is None
