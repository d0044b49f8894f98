"""The tool loop (`run_tools` / `arun_tools`) against scripted `FunctionModel`s: no network."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import modelmix as mm
from modelmix._tool_loop import ToolLoopLimitError, ToolRun, arun_tools, run_tools
from modelmix.testing import FakeReply, FunctionModel


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get_weather(city: str, days: int = 1) -> dict[str, Any]:
    """Weather for a city."""
    return {"city": city, "days": days, "sky": "sunny"}


async def get_time(city: str) -> str:
    """Local time in a city."""
    await anyio.lowlevel.checkpoint()
    return f"12:00 in {city}"


def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"boom: {reason}")


def calls(*pairs: tuple[str, dict[str, Any]]) -> FakeReply:
    return FakeReply(tool_calls=[{"name": name, "arguments": arguments} for name, arguments in pairs])


def tool_messages(messages: Sequence[mm.Message]) -> list[mm.Message]:
    return [message for message in messages if message.role == "tool"]


def answer_with_tool_results(messages: list[mm.Message], settings: Any) -> FakeReply:
    """Asks for the weather once, then answers with what the tools said."""
    results = tool_messages(messages)
    if not results:
        return calls(("get_weather", {"city": "Paris"}))
    return FakeReply("done: " + " | ".join(message.text for message in results))


# ------------------------------------------------------------------------------ steps


def test_one_step_answer_without_tool_calls() -> None:
    model = FunctionModel("Nothing to call.")
    run = run_tools(model, "hi", [get_weather])
    assert isinstance(run, ToolRun)
    assert run.text == "Nothing to call."
    assert len(run.steps) == 1
    assert run.steps[0].outcomes == []
    assert [m.role for m in run.messages] == ["user", "assistant"]
    assert model.calls
    assert len(model.calls) == 1


def test_two_steps_run_the_function_and_feed_its_result_back() -> None:
    model = FunctionModel(answer_with_tool_results)
    run = run_tools(model, "Weather in Paris?", [get_weather])
    assert len(run.steps) == 2
    first = run.steps[0]
    assert [call.name for call in first.calls] == ["get_weather"]
    assert first.outcomes[0].ok
    assert first.outcomes[0].value == {"city": "Paris", "days": 1, "sky": "sunny"}
    assert json.loads(first.outcomes[0].content) == {"city": "Paris", "days": 1, "sky": "sunny"}
    assert [m.role for m in run.messages] == ["user", "assistant", "tool", "assistant"]
    assert run.messages[2].tool_call_id == first.calls[0].id
    assert run.text.startswith("done: ")
    assert "sunny" in run.text
    # The model saw the tools on every call and the tool result on the second one.
    assert model.calls[1][-1].role == "tool"


@pytest.mark.anyio
async def test_async_loop_runs_sync_and_async_tools(anyio_backend: str) -> None:
    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        if not tool_messages(messages):
            return calls(("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Oslo"}))
        return FakeReply("ok")

    run = await arun_tools(FunctionModel(script), "Oslo?", [get_weather, get_time])
    outcomes = run.steps[0].outcomes
    assert [o.call.name for o in outcomes] == ["get_weather", "get_time"]
    assert outcomes[1].value == "12:00 in Oslo"
    assert outcomes[1].content == "12:00 in Oslo"
    assert [m.text for m in tool_messages(run.messages)][1] == "12:00 in Oslo"


def test_sync_loop_runs_an_async_tool() -> None:
    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        return FakeReply("ok") if tool_messages(messages) else calls(("get_time", {"city": "Rome"}))

    run = run_tools(FunctionModel(script), "Rome?", [get_time])
    assert run.steps[0].outcomes[0].value == "12:00 in Rome"


@pytest.mark.anyio
async def test_calls_of_one_step_run_concurrently_and_keep_call_order(anyio_backend: str) -> None:
    # Each call waits until all three have started: run one after another, the first would wait
    # forever (the fail_after turns that into a failure instead of a hang).
    started = 0
    all_started = anyio.Event()

    async def rendezvous(tag: str) -> str:
        """Waits for the other calls of its step."""
        nonlocal started
        started += 1
        if started == 3:
            all_started.set()
        await all_started.wait()
        return tag

    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        if tool_messages(messages):
            return FakeReply("ok")
        return calls(*[("rendezvous", {"tag": tag}) for tag in ("a", "b", "c")])

    with anyio.fail_after(10):
        run = await arun_tools(FunctionModel(script), "go", [rendezvous])
    assert [m.text for m in tool_messages(run.messages)] == ["a", "b", "c"]
    assert [m.tool_call_id for m in tool_messages(run.messages)] == [c.id for c in run.steps[0].calls]


# ---------------------------------------------------------------------- errors fed back


def test_a_tool_exception_is_fed_back_and_recorded() -> None:
    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        results = tool_messages(messages)
        return FakeReply("sorry: " + results[0].text) if results else calls(("explode", {"reason": "x"}))

    run = run_tools(FunctionModel(script), "go", [explode])
    outcome = run.steps[0].outcomes[0]
    assert not outcome.ok
    assert isinstance(outcome.error, RuntimeError)
    assert outcome.content == "error: RuntimeError: boom: x"
    assert run.text == "sorry: error: RuntimeError: boom: x"


@pytest.mark.anyio
async def test_a_tool_exception_is_fed_back_in_the_async_loop(anyio_backend: str) -> None:
    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        return FakeReply("ok") if tool_messages(messages) else calls(("explode", {"reason": "y"}))

    run = await arun_tools(FunctionModel(script), "go", [explode])
    assert isinstance(run.steps[0].outcomes[0].error, RuntimeError)
    assert tool_messages(run.messages)[0].text == "error: RuntimeError: boom: y"


@pytest.mark.parametrize(
    ("arguments", "name"),
    [({"city": "Paris", "days": "many"}, "get_weather"), ({}, "get_weather"), ({"city": "Paris"}, "teleport")],
    ids=["wrong-type", "missing", "unknown-tool"],
)
def test_arguments_that_do_not_fit_are_fed_back(arguments: dict[str, Any], name: str) -> None:
    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        return FakeReply("fixed") if tool_messages(messages) else calls((name, arguments))

    run = run_tools(FunctionModel(script), "go", [get_weather])
    outcome = run.steps[0].outcomes[0]
    assert isinstance(outcome.error, mm.ToolArgumentsError)
    assert outcome.error.tool_name == name
    assert outcome.content.startswith("error: ToolArgumentsError: ")
    assert run.text == "fixed"


def test_a_tool_with_nothing_to_run_is_an_error_result() -> None:
    schema_only = mm.Tool(name="lookup", parameters={"type": "object", "properties": {}})

    def script(messages: list[mm.Message], settings: Any) -> FakeReply:
        return FakeReply("ok") if tool_messages(messages) else calls(("lookup", {}))

    run = run_tools(FunctionModel(script), "go", [schema_only])
    assert "no Python function to run" in run.steps[0].outcomes[0].content


# ------------------------------------------------------------------------------ the limit


def test_the_step_limit_raises_with_the_steps_so_far() -> None:
    model = FunctionModel(calls(("get_weather", {"city": "Paris"})))  # never stops calling
    with pytest.raises(ToolLoopLimitError) as caught:
        run_tools(model, "go", [get_weather], max_steps=3)
    error = caught.value
    assert len(model.calls) == 3
    assert len(error.steps) == 3
    assert [len(step.outcomes) for step in error.steps] == [1, 1, 0]  # the last step's tools were not run
    assert error.messages[-1].role == "assistant"
    assert error.messages[-1].tool_calls
    assert "max_steps=3" in error.message
    assert isinstance(error, mm.ModelMixError)
    assert len(pickle.loads(pickle.dumps(error)).steps) == 3


@pytest.mark.anyio
async def test_the_step_limit_in_the_async_loop(anyio_backend: str) -> None:
    model = FunctionModel(calls(("get_time", {"city": "Rome"})))
    with pytest.raises(ToolLoopLimitError):
        await arun_tools(model, "go", [get_time], max_steps=2)
    assert len(model.calls) == 2


@pytest.mark.parametrize("max_steps", [0, -1, 1.5, True])
def test_max_steps_must_be_a_positive_whole_number(max_steps: Any) -> None:
    with pytest.raises(mm.ConfigurationError, match="max_steps"):
        run_tools(FunctionModel("x"), "go", [get_weather], max_steps=max_steps)


def test_no_tools_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="tools"):
        run_tools(FunctionModel("x"), "go", [])


# ----------------------------------------------------------------------- usage and cost


def _response(text: str, tool_calls: Sequence[mm.ToolCall], usage: mm.Usage | None, cost: float | None) -> Any:
    price = None if cost is None else Decimal(str(cost))
    return mm.ChatResponse(
        message=mm.assistant(text or None, tool_calls=tool_calls), provider="function", usage=usage, cost=price
    )


def test_usage_and_cost_are_summed_over_the_steps() -> None:
    call = mm.ToolCall.from_raw("call_0", "get_weather", {"city": "Paris"})
    script = iter(
        [
            _response("", [call], mm.Usage(input_tokens=10, output_tokens=5, cached_tokens=4), 0.25),
            _response("", [call], None, None),  # a step that reported nothing
            _response("done", [], mm.Usage(input_tokens=20, output_tokens=7), 0.5),
        ]
    )
    run = run_tools(FunctionModel(lambda messages, settings: next(script)), "go", [get_weather])
    assert run.usage is not None
    assert (run.usage.input_tokens, run.usage.output_tokens, run.usage.cached_tokens) == (30, 12, 4)
    assert not run.usage.estimated
    assert run.cost == pytest.approx(0.75)


def test_usage_and_cost_are_none_when_no_step_reported_them() -> None:
    run = run_tools(FunctionModel(answer_with_tool_results), "go", [get_weather])
    assert run.usage is None
    assert run.cost is None


def test_a_forced_tool_choice_holds_for_the_first_call_only() -> None:
    seen: list[Any] = []

    def answer(messages: list[mm.Message], settings: Any) -> Any:
        seen.append(settings.get("tool_choice"))
        if len(seen) == 1:
            return FakeReply(tool_calls=[{"id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}])
        return "3"

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    run = mm.run_tools(FunctionModel(answer), "1+2?", [add], tool_choice=add)
    assert run.response.text == "3"
    assert seen == ["add", None]
