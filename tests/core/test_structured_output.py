"""Structured output: ``output=`` chooses its strategy from the profile, validates every answer,
re-asks when asked to, and reports refusals and unenforced constraints as typed errors."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

import modelmix as mm
from modelmix.testing import FakeReply, FunctionModel

from ._helpers import Driver, chunk, completion, per_event, sse_body, sse_response
from .conftest import MakeModel


class Priority(str, Enum):
    low = "low"
    high = "high"


class Task(BaseModel):
    title: str
    priority: Priority


class Plan(BaseModel):
    """A plan of tasks."""

    name: str
    tasks: list[Task]


PLAN = {"name": "launch", "tasks": [{"title": "write docs", "priority": "high"}]}


def _answer(text: str) -> dict[str, Any]:
    return completion(text)


def _recording(*bodies: dict[str, Any]) -> tuple[list[dict[str, Any]], httpx.MockTransport]:
    """A transport answering with `bodies` in turn; the JSON of each request sent is kept."""
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=bodies[min(len(sent), len(bodies)) - 1])

    return sent, httpx.MockTransport(handler)


# --------------------------------------------------------------------------- native (OpenAI)


async def test_native_strategy_sends_a_strict_schema_and_returns_the_validated_object(
    driver: Driver, make_model: MakeModel
) -> None:
    sent, transport = _recording(_answer(json.dumps(PLAN)))
    response = await driver.chat(make_model(transport), "Plan the launch", output=Plan)
    assert response.output == Plan.model_validate(PLAN)
    assert isinstance(response.output.tasks[0].priority, Priority)
    fmt = sent[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Plan"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "tasks"]
    assert schema["$defs"]["Task"]["additionalProperties"] is False
    assert "output" not in sent[0]


@pytest.mark.parametrize(
    ("target", "answer", "expected"),
    [
        (list[Task], {"result": [{"title": "a", "priority": "low"}]}, [Task(title="a", priority=Priority.low)]),
        (int, {"result": 42}, 42),
        (Literal["yes", "no"], {"result": "no"}, "no"),
        (Task | Plan, {"result": {"title": "a", "priority": "low"}}, Task(title="a", priority=Priority.low)),
    ],
)
async def test_a_type_that_is_not_an_object_travels_wrapped_and_comes_back_unwrapped(
    driver: Driver, make_model: MakeModel, target: Any, answer: Any, expected: Any
) -> None:
    sent, transport = _recording(_answer(json.dumps(answer)))
    response = await driver.chat(make_model(transport), "go", output=target)
    assert response.output == expected
    schema = sent[0]["response_format"]["json_schema"]["schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["result"]


@dataclass
class Point:
    x: int
    y: int


class Person(TypedDict):
    name: str
    age: int


@pytest.mark.parametrize(
    ("target", "answer", "expected"),
    [(Point, {"x": 1, "y": 2}, Point(1, 2)), (Person, {"name": "Ada", "age": 36}, {"name": "Ada", "age": 36})],
)
async def test_dataclasses_and_typeddicts_are_outputs_too(
    driver: Driver, make_model: MakeModel, target: Any, answer: Any, expected: Any
) -> None:
    _, transport = _recording(_answer(json.dumps(answer)))
    assert (await driver.chat(make_model(transport), "go", output=target)).output == expected


async def test_a_schema_strict_mode_cannot_express_is_sent_without_strict(
    driver: Driver, make_model: MakeModel
) -> None:
    class Tags(BaseModel):
        counts: dict[str, int]

    sent, transport = _recording(_answer('{"counts": {"a": 1}}'))
    response = await driver.chat(make_model(transport), "go", output=Tags)
    assert response.output == Tags(counts={"a": 1})
    assert "strict" not in sent[0]["response_format"]["json_schema"]


async def test_an_unenforced_schema_fails_closed_with_the_raw_text(driver: Driver, make_model: MakeModel) -> None:
    # A server that takes the schema and ignores it (vLLM >= 0.12 with guided_json answers 200).
    _, transport = _recording(_answer('{"name": "launch", "tasks": "soon"}'))
    with pytest.raises(mm.OutputValidationError) as caught:
        await driver.chat(make_model(transport), "go", output=Plan)
    error = caught.value
    assert error.raw_text == '{"name": "launch", "tasks": "soon"}'
    assert error.strategy == "native"
    assert error.enforced is True
    assert "did not enforce" in error.message
    assert error.errors
    assert error.errors[0].startswith("tasks")
    assert error.provider == "openai"
    assert error.usage is not None


async def test_text_that_is_not_json_is_a_validation_error(driver: Driver, make_model: MakeModel) -> None:
    _, transport = _recording(_answer("Sure! Here is your plan."))
    with pytest.raises(mm.OutputValidationError, match="not JSON") as caught:
        await driver.chat(make_model(transport), "go", output=Plan)
    assert caught.value.enforced is False


async def test_a_truncated_answer_says_so(driver: Driver, make_model: MakeModel) -> None:
    body = _answer('{"name": "lau')
    body["choices"][0]["finish_reason"] = "length"
    _, transport = _recording(body)
    with pytest.raises(mm.OutputValidationError, match="max_tokens"):
        await driver.chat(make_model(transport), "go", output=Plan)


async def test_a_refusal_is_its_own_error(driver: Driver, make_model: MakeModel) -> None:
    body = _answer("")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    _, transport = _recording(body)
    with pytest.raises(mm.OutputRefusedError) as caught:
        await driver.chat(make_model(transport), "go", output=Plan)
    assert caught.value.refusal == "I can't help with that."


async def test_a_refusal_is_reported_on_plain_calls_too(driver: Driver, make_model: MakeModel) -> None:
    body = _answer("")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "No."}
    _, transport = _recording(body)
    assert (await driver.chat(make_model(transport), "go")).refusal == "No."


# ------------------------------------------------------------------------------------ re-ask


async def test_a_reask_shows_the_model_its_mistake_and_sums_usage(driver: Driver, make_model: MakeModel) -> None:
    bad = _answer('{"name": "launch", "tasks": [{"title": "x", "priority": "urgent"}]}')
    good = _answer(json.dumps(PLAN))
    sent, transport = _recording(bad, good)
    response = await driver.chat(make_model(transport), "go", output=Plan, output_retries=1)
    assert response.output == Plan.model_validate(PLAN)
    assert len(sent) == 2
    reask = sent[1]["messages"]
    assert reask[-2]["role"] == "assistant"
    assert "urgent" in reask[-2]["content"]
    assert reask[-1]["role"] == "user"
    assert "tasks.0.priority" in reask[-1]["content"]
    one = bad["usage"]
    assert response.usage is not None
    assert response.usage.input_tokens == 2 * one["prompt_tokens"]
    assert response.usage.output_tokens == 2 * one["completion_tokens"]


async def test_reasks_are_bounded(driver: Driver, make_model: MakeModel) -> None:
    sent, transport = _recording(_answer("{}"))
    with pytest.raises(mm.OutputValidationError, match="after 3 attempts") as caught:
        await driver.chat(make_model(transport), "go", output=Plan, output_retries=2)
    assert len(sent) == 3
    assert caught.value.usage is not None
    assert caught.value.usage.input_tokens == 3 * _answer("{}")["usage"]["prompt_tokens"]


# ------------------------------------------------------------------ strategies from profiles


def _replying(text_or_reply: Any, seen: list[tuple[list[mm.Message], dict[str, Any]]]) -> Any:
    def answer(messages: list[mm.Message], settings: dict[str, Any]) -> Any:
        seen.append((messages, dict(settings)))
        return text_or_reply

    return answer


async def test_tool_strategy_forces_a_call_of_the_output_tool(driver: Driver) -> None:
    seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    call = {"id": "call_1", "name": "final_result", "arguments": PLAN}
    model = FunctionModel(_replying(FakeReply(tool_calls=[call]), seen), profile={"json_schema": False})
    response = await driver.chat(model, "go", output=Plan)
    assert response.output == Plan.model_validate(PLAN)
    settings = seen[0][1]
    assert settings["tool_choice"] == "final_result"
    (tool,) = settings["tools"]
    assert tool.name == "final_result"
    assert tool.description == "A plan of tasks."
    assert "response_format" not in settings


async def test_tool_strategy_with_your_own_tools_lets_the_model_call_them_first(driver: Driver) -> None:
    def get_time() -> str:
        """The time."""
        return "noon"

    seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    call = {"id": "call_1", "name": "get_time", "arguments": {}}
    model = FunctionModel(_replying(FakeReply(tool_calls=[call]), seen), profile={"json_schema": False})
    response = await driver.chat(model, "go", output=Plan, tools=[get_time])
    assert response.output is None
    assert [c.name for c in response.tool_calls] == ["get_time"]
    settings = seen[0][1]
    assert settings["tool_choice"] == "required"
    assert [t.name for t in settings["tools"]] == ["get_time", "final_result"]


async def test_json_mode_strategy_puts_the_schema_in_the_instructions(driver: Driver) -> None:
    seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    model = FunctionModel(
        _replying("```json\n" + json.dumps(PLAN) + "\n```", seen), profile={"json_schema": False, "tools": False}
    )
    response = await driver.chat(model, [mm.system("You plan."), mm.user("go")], output=Plan)
    assert response.output == Plan.model_validate(PLAN)
    messages, settings = seen[0]
    assert settings["response_format"] == "json"
    assert messages[0].role == "system"
    assert messages[0].text.startswith("You plan.")
    assert '"tasks"' in messages[0].text
    assert len(messages) == 2


async def test_prompt_strategy_when_the_backend_enforces_nothing(driver: Driver) -> None:
    seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    profile = {"json_schema": False, "tools": False, "json_mode": False}
    model = FunctionModel(_replying("Here you go: " + json.dumps(PLAN) + " Enjoy!", seen), profile=profile)
    response = await driver.chat(model, "go", output=Plan)
    assert response.output == Plan.model_validate(PLAN)
    messages, settings = seen[0]
    assert "response_format" not in settings
    assert messages[0].role == "system"
    assert "JSON schema" in messages[0].text


async def test_a_strategy_can_be_forced_or_is_refused_before_sending(driver: Driver) -> None:
    seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    model = FunctionModel(_replying(json.dumps(PLAN), seen), profile={"json_schema": False})
    response = await driver.chat(model, "go", output=Plan, output_strategy="json")
    assert response.output == Plan.model_validate(PLAN)
    assert seen[0][1]["response_format"] == "json"
    with pytest.raises(mm.UnsupportedCapabilityError, match="output_strategy='native'"):
        await driver.chat(model, "go", output=Plan, output_strategy="native")
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"output": Plan, "response_format": "json"}, "either output= .* or response_format="),
        ({"output_retries": 1}, "only applies with output="),
        ({"output": "Plan"}, "is not a type"),
        ({"output": Plan, "output_retries": -1}, "output_retries"),
        ({"output": Plan, "output_strategy": "grammar"}, "output_strategy"),
    ],
)
def test_mistakes_are_configuration_errors(settings: dict[str, Any], message: str) -> None:
    model = FunctionModel(json.dumps(PLAN))
    with pytest.raises(mm.ConfigurationError, match=message):
        model.chat("go", **settings)


# ----------------------------------------------------------------------------------- streams


async def test_a_stream_yields_growing_partial_values_then_the_validated_object(
    driver: Driver, make_model: MakeModel
) -> None:
    text = json.dumps(PLAN)
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    body = sse_body(*[chunk(content=piece) for piece in pieces], chunk(finish="stop"))
    model = make_model(lambda request: sse_response(per_event(body)))
    events, response = await driver.events(model, "go", output=Plan)
    partials = [event.value for event in events if isinstance(event, mm.PartialOutput)]
    assert len(partials) > 3
    assert partials[-1] == PLAN
    assert any(p.get("tasks") == [] or "tasks" not in p for p in partials)
    assert response.output == Plan.model_validate(PLAN)


def test_stream_outputs_ends_with_the_validated_object() -> None:
    model = FunctionModel(json.dumps(PLAN), chunks=9)
    with model.stream("go", output=Plan) as stream:
        values = list(stream.outputs())
    assert values[-1] == Plan.model_validate(PLAN)
    assert all(isinstance(v, dict) for v in values[:-1])
    assert values[-2] == PLAN


async def test_async_stream_outputs_and_an_invalid_streamed_answer() -> None:
    model = FunctionModel('{"name": "x", "tasks": 3}', chunks=3)
    async with model.astream("go", output=Plan) as stream:
        with pytest.raises(mm.OutputValidationError) as caught:
            async for _ in stream.outputs():
                pass
    assert caught.value.raw_text == '{"name": "x", "tasks": 3}'


def test_a_streamed_tool_strategy_follows_the_output_tools_arguments() -> None:
    call = {"id": "c1", "name": "final_result", "arguments": PLAN}
    model = FunctionModel(FakeReply(tool_calls=[call]), profile={"json_schema": False}, chunks=6)
    with model.stream("go", output=Plan) as stream:
        values = list(stream.outputs())
    assert values[-1] == Plan.model_validate(PLAN)
    assert values[-2] == PLAN


# ------------------------------------------------------------------------------------ chains


async def test_each_member_of_a_chain_gets_its_own_strategy(driver: Driver) -> None:
    local_seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    remote_seen: list[tuple[list[mm.Message], dict[str, Any]]] = []
    weak = FunctionModel(
        _replying("no idea", local_seen),
        name="small",
        provider="local",
        profile={"json_schema": False, "tools": False, "json_mode": False},
    )
    strong = FunctionModel(_replying(json.dumps(PLAN), remote_seen), name="big", provider="remote")
    chain = mm.fallback(weak, strong)
    response = await driver.chat(chain, "go", output=Plan)
    assert response.output == Plan.model_validate(PLAN)
    assert "response_format" not in local_seen[0][1]  # prompt strategy
    assert remote_seen[0][1]["response_format"]["type"] == "json_schema"  # native
    assert [(a.model, a.error) for a in response.attempts] == [("small", "OutputValidationError"), ("big", None)]


async def test_a_member_that_cannot_serve_the_request_is_skipped_and_recorded(driver: Driver) -> None:
    def get_time() -> str:
        """The time."""
        return "noon"

    no_tools = FunctionModel("unused", name="no-tools", profile={"tools": False})
    able = FunctionModel(json.dumps(PLAN), name="able")
    response = await driver.chat(mm.fallback(no_tools, able), "go", output=Plan, tools=[get_time])
    assert response.output == Plan.model_validate(PLAN)
    assert [(a.model, a.error) for a in response.attempts] == [
        ("no-tools", "UnsupportedCapabilityError"),
        ("able", None),
    ]
    assert no_tools.calls == []


async def test_the_tool_loop_returns_structured_output(driver: Driver) -> None:
    def get_time() -> str:
        """The time."""
        return "noon"

    replies: list[Any] = [
        FakeReply(tool_calls=[{"id": "c1", "name": "get_time", "arguments": {}}]),
        json.dumps(PLAN),
    ]
    model = FunctionModel(replies)
    if driver.mode == "sync":
        run = mm.run_tools(model, "go", [get_time], output=Plan)
    else:
        run = await mm.arun_tools(model, "go", [get_time], output=Plan)
    assert run.response.output == Plan.model_validate(PLAN)
    assert len(run.steps) == 2


def test_the_tool_loop_ends_when_the_output_tool_is_called() -> None:
    def get_time() -> str:
        """The time."""
        return "noon"

    seen: list[Any] = []

    def answer(messages: list[mm.Message], settings: Any) -> Any:
        seen.append([t.name for t in settings["tools"]])
        if len(seen) == 1:
            return FakeReply(tool_calls=[{"id": "c1", "name": "get_time", "arguments": {}}])
        return FakeReply(tool_calls=[{"id": "c2", "name": "final_result", "arguments": PLAN}])

    run = mm.run_tools(FunctionModel(answer, profile={"json_schema": False}), "go", [get_time], output=Plan)
    assert run.response.output == Plan.model_validate(PLAN)
    assert seen == [["get_time", "final_result"], ["get_time", "final_result"]]
    assert [outcome.content for outcome in run.steps[0].outcomes] == ["noon"]


@pytest.mark.parametrize(
    ("via", "field", "expected"),
    [
        ("response_format", "response_format", "json_schema"),
        ("json_object_schema", "response_format", "json_object"),
        ("json_schema", "json_schema", None),
    ],
)
def test_the_schema_travels_the_way_the_profile_says(via: str, field: str, expected: str | None) -> None:
    sent, transport = _recording(_answer(json.dumps(PLAN)))
    model = mm.model(
        "openai:gpt-4o-mini",
        api_key="sk-test",
        http_client=httpx.Client(transport=transport),
        profile={"json_schema_via": via},
    )
    with model:
        assert model.chat("go", output=Plan).output == Plan.model_validate(PLAN)
    body = sent[0]
    assert set(body) & {"response_format", "json_schema"} == {field}
    if expected is None:
        assert body["json_schema"]["properties"]["tasks"]["type"] == "array"
    else:
        assert body["response_format"]["type"] == expected


def test_each_partial_output_differs_from_the_one_before() -> None:
    model = FunctionModel(json.dumps(PLAN), chunks=40)
    with model.stream("go", output=Plan) as stream:
        partials = [event.value for event in stream if isinstance(event, mm.PartialOutput)]
    assert partials[-1] == PLAN
    assert all(before != after for before, after in itertools.pairwise(partials))
