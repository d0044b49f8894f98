"""Message input forms, settings merge and the OpenAI request body."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix._codec import RequestContext
from modelmix._messages import ImagePart, TextPart, to_messages
from modelmix._profile import ModelProfile
from modelmix._settings import Tool, merge_settings
from modelmix.providers._openai_wire import (
    OpenAIChatCodec,
    encode_message,
    encode_response_format,
    encode_tool,
    parse_usage,
)

from ._helpers import Driver, completion
from .conftest import MakeModel

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


# ------------------------------------------------------------------------------ to_messages


def test_plain_string_is_one_user_turn() -> None:
    assert to_messages("hi") == [mm.Message(role="user", content="hi")]


def test_user_helper_with_one_string_is_plain_text() -> None:
    assert mm.user("hello") == mm.Message(role="user", content="hello")
    assert mm.user(mm.image("https://x.test/i.png")).content == [ImagePart(url="https://x.test/i.png")]


def test_single_message_and_single_dict() -> None:
    message = mm.system("be brief")
    assert to_messages(message) == [message]
    assert to_messages({"role": "developer", "content": "x"}) == [mm.Message(role="developer", content="x")]


def test_dicts_with_content_parts() -> None:
    (message,) = to_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
                    {"type": "image_url", "image_url": "https://x.test/b.png"},
                    {"type": "image", "url": "https://x.test/c.png"},
                    "plain string part",
                    TextPart(text="typed part"),
                ],
            }
        ]
    )
    assert isinstance(message.content, list)
    assert message.content[1] == ImagePart(url="https://x.test/a.png", detail="low")
    assert message.content[2] == ImagePart(url="https://x.test/b.png")
    assert message.content[3] == ImagePart(url="https://x.test/c.png")
    assert message.text == "What is this?plain string parttyped part"


def test_dict_tool_calls_in_both_shapes() -> None:
    (message,) = to_messages(
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                    {"id": "b", "name": "g", "arguments": {"y": 2}},
                    mm.ToolCall(id="c", name="h"),
                ],
            }
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
        ("c", "h", {}),
    ]
    assert message.text == ""


def test_typed_helpers() -> None:
    call = mm.ToolCall.from_raw("call_1", "lookup", '{"q": "x"}')
    conversation = [
        mm.system("sys"),
        mm.user("Look at", mm.image(data=PNG), mm.image("https://x.test/y.jpg", detail="high")),
        mm.assistant(tool_calls=[call]),
        mm.tool_result("call_1", {"answer": 42}),
        mm.tool_result("call_1", "plain"),
        mm.assistant("done"),
    ]
    assert to_messages(conversation) == conversation
    assert conversation[3].content == '{"answer": 42}'
    assert conversation[3].tool_call_id == "call_1"
    user_message = conversation[1]
    assert isinstance(user_message.content, list)
    image_part = user_message.content[1]
    assert isinstance(image_part, ImagePart)
    assert image_part.media_type == "image/png"
    assert image_part.as_url() == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "data=" not in repr(image_part), "raw bytes are kept out of reprs"


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(b"\xff\xd8\xff\xe0", "image/jpeg"), (b"GIF89a", "image/gif"), (b"RIFF....WEBP", "image/webp")],
)
def test_image_type_sniffing(data: bytes, media_type: str) -> None:
    assert mm.image(data=data).as_url().startswith(f"data:{media_type};base64,")


def test_image_explicit_media_type() -> None:
    assert mm.image(data=b"anything", media_type="image/avif").as_url().startswith("data:image/avif;base64,")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mm.image(), "exactly one of url= or data="),
        (lambda: mm.image("https://x", data=PNG), "exactly one of url= or data="),
        (lambda: mm.image(data=b"????"), "media_type="),
        (lambda: mm.user(), "needs some content"),
        (lambda: to_messages([]), "messages is empty"),
        (lambda: to_messages(42), "not int"),  # type: ignore[arg-type]
        (lambda: to_messages([42]), r"messages\[0\] is a int"),  # type: ignore[list-item]
        (lambda: to_messages([{"role": "wizard", "content": "x"}]), r"messages\[0\] is not a valid message: role"),
        (lambda: to_messages([{"role": "user", "content": [{"type": "audio"}]}]), "unsupported content part"),
        (lambda: to_messages([{"role": "user", "content": [42]}]), "unsupported content part 42"),
        (lambda: to_messages([{"role": "assistant", "tool_calls": [7]}]), "unsupported tool call"),
    ],
)
def test_clear_errors(call: Any, match: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=match):
        call()


def test_tool_call_from_raw() -> None:
    assert mm.ToolCall.from_raw("i", "n", None).raw_arguments == ""
    assert mm.ToolCall.from_raw("i", "n", {"a": 1}).raw_arguments == '{"a": 1}'
    not_object = mm.ToolCall.from_raw("i", "n", "[1]")
    assert not_object.arguments_error == "arguments are not a JSON object"
    assert not_object.raw_arguments == "[1]"


# ------------------------------------------------------------------------------ settings


def test_merge_settings_precedence() -> None:
    defaults = {"temperature": 0.1, "max_tokens": 10, "extra_body": {"a": 1, "b": 1}, "extra_headers": {"x": "1"}}
    merged = merge_settings(defaults, {"temperature": 0.9, "extra_body": {"b": 2}, "extra_headers": {"y": "2"}})
    assert merged == {
        "temperature": 0.9,
        "max_tokens": 10,
        "extra_body": {"a": 1, "b": 2},
        "extra_headers": {"x": "1", "y": "2"},
    }
    assert defaults["temperature"] == 0.1, "defaults are not modified"
    assert merge_settings(None, {"seed": 1}) == {"seed": 1}


def test_unknown_settings_are_a_clear_error() -> None:
    with pytest.raises(mm.ConfigurationError, match=r"unknown setting.*'temprature'.*extra_body"):
        merge_settings(None, {"temprature": 0.5})
    with pytest.raises(mm.ConfigurationError, match="'bogus'"):
        merge_settings({"bogus": 1}, {})


async def test_model_defaults_then_call_settings(driver: Driver, make_model: MakeModel) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion())

    model = make_model(handler, settings={"temperature": 0.2, "seed": 7})
    await driver.chat(model, "hi", temperature=0.8)
    await driver.chat(model, "hi")
    assert (seen[0]["temperature"], seen[0]["seed"]) == (0.8, 7)
    assert seen[1]["temperature"] == 0.2
    with pytest.raises(mm.ConfigurationError):
        make_model(handler, settings={"nope": 1})


# ------------------------------------------------------------------------------ request body


class Answer(BaseModel):
    city: str


def build(settings: dict[str, Any], *, stream: bool = False, profile: ModelProfile | None = None) -> dict[str, Any]:
    call = RequestContext(
        "gpt-4o", to_messages("hi"), merge_settings(None, settings), profile or ModelProfile(), stream
    )
    return OpenAIChatCodec().build_body(call)


def test_body_basics() -> None:
    body = build({"temperature": 0.3, "top_p": 0.9, "seed": 1, "stop": ("a", "b"), "user": "u", "max_tokens": 5})
    assert body == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "seed": 1,
        "user": "u",
        "max_tokens": 5,
        "stop": ["a", "b"],
    }
    assert build({"stop": "END"})["stop"] == "END"


def test_body_tools_and_tool_choice() -> None:
    tools = [
        Tool(name="get", description="Get it", parameters={"type": "object"}, strict=True),
        Tool(name="bare"),
        {"name": "raw_fn", "parameters": {}},
        {"type": "function", "function": {"name": "already"}},
    ]
    body = build({"tools": tools, "tool_choice": "get", "parallel_tool_calls": False})
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get", "parameters": {"type": "object"}, "description": "Get it", "strict": True},
        },
        {"type": "function", "function": {"name": "bare", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "raw_fn", "parameters": {}}},
        {"type": "function", "function": {"name": "already"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get"}}
    assert body["parallel_tool_calls"] is False
    for choice in ("auto", "none", "required"):
        assert build({"tool_choice": choice})["tool_choice"] == choice
    with pytest.raises(mm.ConfigurationError, match="a tool needs a name"):
        encode_tool({"parameters": {}})


def test_body_response_format() -> None:
    assert build({"response_format": "json"})["response_format"] == {"type": "json_object"}
    assert build({"response_format": "text"})["response_format"] == {"type": "text"}
    schema = build({"response_format": Answer})["response_format"]
    assert schema["type"] == "json_schema"
    assert schema["json_schema"]["name"] == "Answer"
    assert schema["json_schema"]["schema"]["properties"]["city"]["type"] == "string"
    custom = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert build({"response_format": custom})["response_format"] == custom
    with pytest.raises(mm.ConfigurationError, match="response_format"):
        encode_response_format("yaml")


def test_body_stream_options_and_extra_body() -> None:
    body = build({"extra_body": {"reasoning_effort": "low"}}, stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["reasoning_effort"] == "low"
    assert "stream_options" not in build({}, stream=True, profile=ModelProfile(stream_usage=False))
    assert "stream" not in build({})


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("o1-mini", "max_completion_tokens"),
        ("o3", "max_completion_tokens"),
        ("o4-mini", "max_completion_tokens"),
        ("gpt-5-nano", "max_completion_tokens"),
        ("gpt-4o-mini", "max_tokens"),
    ],
)
async def test_max_tokens_field_by_model(make_model: MakeModel, name: str, field: str) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion())

    make_model(handler, name=name).chat("hi", max_tokens=50)
    assert seen[0][field] == 50
    assert len([k for k in seen[0] if "max" in k]) == 1


def test_encode_messages_of_every_kind() -> None:
    call = mm.ToolCall(id="c1", name="f", arguments={"a": 1})
    assert encode_message(mm.assistant(tool_calls=[call])) == {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    }
    assert encode_message(mm.tool_result("c1", "ok")) == {"role": "tool", "content": "ok", "tool_call_id": "c1"}
    assert encode_message(mm.Message(role="user", name="ann")) == {"role": "user", "content": "", "name": "ann"}
    parts = encode_message(mm.user("see", mm.image("https://x.test/i.png", detail="low")))
    assert parts["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "https://x.test/i.png", "detail": "low"}},
    ]
    raw = mm.ToolCall.from_raw("c2", "g", '{"keep": "as sent"}')
    assert encode_message(mm.assistant(tool_calls=[raw]))["tool_calls"][0]["function"]["arguments"] == (
        '{"keep": "as sent"}'
    )


def test_parse_usage_shapes() -> None:
    assert parse_usage(None) is None
    assert parse_usage({"total_tokens": 4}) is None
    assert parse_usage({"input_tokens": 2, "output_tokens": 3}) == mm.Usage(input_tokens=2, output_tokens=3)
    assert parse_usage({"prompt_tokens": 2, "prompt_tokens_details": {"cached_tokens": "x"}}) == mm.Usage(
        input_tokens=2
    )


async def test_request_headers_and_body(driver: Driver, make_model: MakeModel) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    model = make_model(handler, default_headers={"x-team": "a"})
    response = await driver.chat(model, [mm.system("s"), {"role": "user", "content": "ü"}], extra_headers={"x-c": "1"})
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("modelmix/")
    assert (request.headers["x-team"], request.headers["x-c"]) == ("a", "1")
    assert json.loads(request.content)["messages"][1] == {"role": "user", "content": "ü"}
    assert "ü".encode() in request.content, "UTF-8, not ASCII escapes"
    assert response.raw is not None
    assert response.latency > 0


async def test_call_timeout_reaches_the_request(driver: Driver, make_model: MakeModel) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    await driver.chat(make_model(handler, timeout=30.0), "hi", timeout=3.0)
    await driver.chat(make_model(handler, timeout=30.0), "hi")
    assert seen[0].extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    assert seen[1].extensions["timeout"]["read"] == 30.0
    assert seen[1].extensions["timeout"]["connect"] == 5.0
