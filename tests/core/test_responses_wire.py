"""The Responses codec on cases the recordings lack: truncation, failures, error events, SSE
framing variants (``event:`` after ``data:``, comments, ``[DONE]``), hosted tools, request bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import modelmix as mm
from modelmix._accumulator import StreamAccumulator
from modelmix._codec import Reply, RequestContext
from modelmix._profile import PERMISSIVE
from modelmix.providers._responses_stream import ResponsesStreamParser
from modelmix.providers._responses_wire import ResponsesCodec

from ._helpers import Driver
from .conftest import MakeModel


def sse(*events: dict[str, Any], event_after: bool = False) -> bytes:
    out = []
    for event in events:
        data = "data: " + json.dumps(event)
        named = f"event: {event['type']}"
        out.append(f"{data}\n{named}\n\n" if event_after else f"{named}\n{data}\n\n")
    return "".join(out).encode()


def terminal(kind: str = "response.completed", **response: Any) -> dict[str, Any]:
    body = {"id": "resp_1", "model": "gpt-5-mini", "status": "completed", "output": [], **response}
    return {"type": kind, "response": body}


USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 12},
}

STREAM: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5-mini", "status": "in_progress"}},
    {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "Plan"},
    {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 1, "delta": "Check"},
    {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "Hé"},
    {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "llo"},
    {"type": "response.output_item.added", "output_index": 2, "item": {"type": "web_search_call", "id": "ws_1"}},
    {
        "type": "response.output_item.added",
        "output_index": 3,
        "item": {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": ""},
    },
    {"type": "response.function_call_arguments.delta", "output_index": 3, "delta": '{"a":'},
    {"type": "response.function_call_arguments.delta", "output_index": 3, "delta": "1}"},
    {
        "type": "response.output_item.done",
        "output_index": 3,
        "item": {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": '{"a":1}'},
    },
    terminal(usage=USAGE),
]


def parse_all(data: bytes, pieces: list[int] | None = None) -> list[mm.StreamEvent]:
    parser = ResponsesStreamParser()
    events: list[mm.StreamEvent] = []
    start = 0
    for cut in [*(pieces or []), len(data)]:
        events.extend(parser.feed(data[start:cut]))
        start = cut
    events.extend(parser.flush())
    assert parser.done
    return events


def test_stream_events() -> None:
    events = parse_all(sse(*STREAM))
    assert events == [
        mm.ReasoningDelta("Plan", summary=True),
        mm.ReasoningDelta("\n\nCheck", summary=True),
        mm.TextDelta("Hé"),
        mm.TextDelta("llo"),
        mm.ToolCallDelta(index=0, id="call_1", name="get"),
        mm.ToolCallDelta(index=0, arguments='{"a":'),
        mm.ToolCallDelta(index=0, arguments="1}"),
        mm.UsageEvent(mm.Usage(input_tokens=10, output_tokens=20, cached_tokens=4, reasoning_tokens=12)),
        mm.FinishEvent("tool_calls"),
    ]


def test_event_line_after_data_comments_and_done_are_accepted() -> None:
    framed = b": keep-alive\n\n" + sse(*STREAM, event_after=True) + b"data: [DONE]\n\n"
    assert parse_all(framed) == parse_all(sse(*STREAM))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_split_anywhere_gives_the_same_events(data: st.DataObject) -> None:
    body = b": OPENROUTER PROCESSING\n\n" + sse(*STREAM, event_after=data.draw(st.booleans())) + b"data: [DONE]\n\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    assert parse_all(body, cuts) == parse_all(sse(*STREAM))


def test_custom_tool_input_streams_raw() -> None:
    item = {"type": "custom_tool_call", "call_id": "c1", "name": "math", "input": ""}
    events = parse_all(
        sse(
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": "4 + "},
            {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": "4"},
            terminal(),
        )
    )
    folded = StreamAccumulator()
    for event in events:
        folded.add(event)
    (call,) = folded.tool_calls()
    assert (call.kind, call.id, call.name, call.raw_arguments, call.arguments_error) == (
        "custom",
        "c1",
        "math",
        "4 + 4",
        None,
    )


def test_arguments_only_on_the_done_item_are_kept() -> None:
    item = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x":2}'}
    events = parse_all(sse({"type": "response.output_item.done", "output_index": 0, "item": item}, terminal()))
    assert events[0] == mm.ToolCallDelta(index=0, id="c1", name="f", arguments='{"x":2}')


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")])
async def test_incomplete_is_a_typed_truncation(
    driver: Driver, make_model: MakeModel, reason: str, finish: str
) -> None:
    details: dict[str, Any] = {"incomplete_details": {"reason": reason}, "status": "incomplete"}
    body = terminal(**details)["response"]
    body["output"] = [{"type": "message", "content": [{"type": "output_text", "text": "Par"}]}]
    stream_body = sse(
        {"type": "response.output_text.delta", "delta": "Par"}, terminal("response.incomplete", **details)
    )

    def handler(request: httpx.Request) -> httpx.Response:
        streamed = json.loads(request.content).get("stream")
        if streamed:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream_body)
        return httpx.Response(200, json=body)

    model = make_model(handler, name="gpt-5-mini", api="responses")
    response = await driver.chat(model, "hi")
    _, streamed = await driver.events(model, "hi")
    for answer in (response, streamed):
        assert answer.text == "Par"
        assert answer.finish_reason == finish
        assert answer.content_filtered is (finish == "content_filter")


@pytest.mark.parametrize(
    ("code", "error_class", "retryable"),
    [
        ("server_error", mm.ServerError, True),
        ("rate_limit_exceeded", mm.RateLimitError, True),
        ("invalid_prompt", mm.BadRequestError, False),
    ],
)
async def test_failed_response_is_a_typed_error(
    driver: Driver, make_model: MakeModel, code: str, error_class: type[mm.APIStatusError], retryable: bool
) -> None:
    failure: dict[str, Any] = {"status": "failed", "error": {"code": code, "message": "it broke"}}
    body = terminal(**failure)["response"]
    model = make_model(lambda request: httpx.Response(200, json=body), name="gpt-5-mini", api="responses")
    with pytest.raises(error_class) as info:
        await driver.chat(model, "hi")
    assert info.value.code == code
    assert info.value.message == "it broke"
    assert info.value.retryable is retryable


@pytest.mark.parametrize(
    "event",
    [
        terminal("response.failed", status="failed", error={"code": "server_error", "message": "boom"}),
        {"type": "error", "code": "server_error", "message": "boom"},
        {"type": "error", "error": {"type": "server_error", "code": "server_error", "message": "boom"}},
    ],
    ids=["response.failed", "error-flat", "error-nested"],
)
async def test_error_events_in_a_stream_are_typed(driver: Driver, make_model: MakeModel, event: dict[str, Any]) -> None:
    body = sse(event)
    model = make_model(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body),
        name="gpt-5-mini",
        api="responses",
    )
    with pytest.raises(mm.InBandStreamError) as info:
        await driver.events(model, "hi")
    assert "boom" in str(info.value)
    assert isinstance(info.value.mapped, mm.ServerError)


async def test_a_stream_without_its_terminal_event_is_truncated(driver: Driver, make_model: MakeModel) -> None:
    body = sse({"type": "response.output_text.delta", "delta": "Par"})
    model = make_model(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body),
        api="responses",
    )
    with pytest.raises((mm.StreamTruncatedError, mm.StreamInterruptedError)):
        await driver.events(model, "hi")


def test_hosted_tool_items_are_not_client_calls() -> None:
    body = terminal(
        output=[
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "message", "content": [{"type": "output_text", "text": "Found it"}]},
        ]
    )["response"]
    reply = _reply()
    response = ResponsesCodec().parse_response(body, reply)
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.raw is not None
    assert response.raw["output"][0]["type"] == "web_search_call"


def _reply() -> Reply:
    return Reply(200, httpx.Headers())


class Answer(BaseModel):
    city: str


def _call(messages: list[mm.Message], stream: bool = False, **settings: Any) -> RequestContext:
    return RequestContext("gpt-5-mini", messages, mm.Settings(**settings), PERMISSIVE, stream)  # type: ignore[typeddict-item]


def test_request_body() -> None:
    call = mm.ToolCall(id="call_1", name="get", arguments={"a": 1}, raw_arguments='{"a":1}')
    messages = [
        mm.system("Be brief"),
        mm.user("look", mm.image(url="https://example.com/a.png")),
        mm.Message(role="assistant", content=None, tool_calls=[call]),
        mm.Message(role="tool", content="42", tool_call_id="call_1"),
    ]
    tool = mm.Tool(name="get", parameters={"type": "object", "properties": {}})
    body = ResponsesCodec().build_body(
        _call(
            messages,
            stream=True,
            tools=[tool],
            tool_choice="get",
            max_tokens=50,
            temperature=0.2,
            response_format=Answer,
        )
    )
    assert body["instructions"] == "Be brief"
    assert body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    ]
    assert body["tools"] == [{"type": "function", "name": "get", "parameters": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "function", "name": "get"}
    assert body["max_output_tokens"] == 50
    assert body["temperature"] == 0.2
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["name"] == "Answer"
    assert body["store"] is False
    assert body["stream"] is True


def test_json_mode_and_custom_tool_turns() -> None:
    custom = mm.ToolCall(id="c1", name="math", raw_arguments="4 + 4", kind="custom")
    messages = [
        mm.user("add"),
        mm.Message(role="assistant", tool_calls=[custom]),
        mm.Message(role="tool", content="8", tool_call_id="c1"),
    ]
    body = ResponsesCodec().build_body(_call(messages, response_format="json"))
    assert body["text"] == {"format": {"type": "json_object"}}
    assert body["input"][1:] == [
        {"type": "custom_tool_call", "call_id": "c1", "name": "math", "input": "4 + 4"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "8"},
    ]
    assert "stream" not in body


def test_store_is_opt_in() -> None:
    body = ResponsesCodec().build_body(
        _call([mm.user("hi")], extra_body={"store": True, "previous_response_id": "resp_0"})
    )
    assert body["store"] is True
    assert body["previous_response_id"] == "resp_0"


@pytest.mark.parametrize("setting", [{"stop": ["x"]}, {"seed": 1}])
def test_chat_only_settings_are_refused(setting: dict[str, Any]) -> None:
    with pytest.raises(mm.ConfigurationError, match=next(iter(setting))):
        ResponsesCodec().build_body(_call([mm.user("hi")], **setting))
