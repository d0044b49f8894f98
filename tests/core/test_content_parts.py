"""Content parts and JSON-schema output travel in the form each backend accepts (request bodies
inspected through `httpx.MockTransport`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.providers.openai_compatible import OpenAICompatibleModel
from modelmix.testing import FakeClock

from ._helpers import CANARY_KEY, Driver, completion

TEXT_PARTS = [{"type": "text", "text": "Say a"}, {"type": "text", "text": "then b."}]


class City(BaseModel):
    name: str
    population: int


@pytest.fixture
def bodies() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def transport(bodies: list[dict[str, Any]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion('{"name": "Oslo", "population": 700000}'))

    return httpx.MockTransport(handler)


@pytest.fixture
def clients(transport: httpx.MockTransport) -> Iterator[tuple[httpx.Client, httpx.AsyncClient]]:
    client, aclient = httpx.Client(transport=transport), httpx.AsyncClient(transport=transport)
    yield client, aclient
    client.close()


def _compatible(preset: str, clients: tuple[httpx.Client, httpx.AsyncClient], **options: Any) -> OpenAICompatibleModel:
    client, aclient = clients
    return OpenAICompatibleModel(
        "smollm2",
        preset=preset,
        base_url="http://127.0.0.1:8080/v1",
        http_client=client,
        async_http_client=aclient,
        **options,
    )


def _openai(clients: tuple[httpx.Client, httpx.AsyncClient]) -> OpenAIModel:
    client, aclient = clients
    return OpenAIModel("gpt-4o-mini", api_key=CANARY_KEY, http_client=client, async_http_client=aclient)


# ------------------------------------------------------------------------------- content parts


@pytest.mark.parametrize("preset", ["llamacpp", "lmstudio", "vllm", "openai-compatible"])
async def test_text_parts_are_one_string_on_compatible_servers(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]], preset: str
) -> None:
    model = _compatible(preset, clients)
    await driver.chat(model, [{"role": "user", "content": TEXT_PARTS}])
    await driver.chat(model, [mm.user("Say a", "then b.")])
    assert [body["messages"] for body in bodies] == [[{"role": "user", "content": "Say a\nthen b."}]] * 2


async def test_a_folded_system_message_joins_without_extra_lines(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]]
) -> None:
    model = _compatible("llamacpp", clients, profile={"system_role": False})
    await driver.chat(model, [mm.system("Be brief."), {"role": "user", "content": TEXT_PARTS}])
    assert bodies[0]["messages"] == [{"role": "user", "content": "Be brief.\n\nSay a\nthen b."}]


async def test_openai_keeps_text_parts_as_a_list(driver: Driver, clients: Any, bodies: list[dict[str, Any]]) -> None:
    await driver.chat(_openai(clients), [{"role": "user", "content": TEXT_PARTS}])
    assert bodies[0]["messages"][0]["content"] == TEXT_PARTS


_TOOL_TURN: list[Any] = [
    mm.user("What is 2 plus 3?"),
    mm.assistant(None, tool_calls=[mm.ToolCall(id="c1", name="add", arguments={"a": 2, "b": 3})]),
    mm.tool_result("c1", "5"),
]


@pytest.mark.parametrize("preset", ["llamacpp", "lmstudio", "vllm", "openai-compatible"])
async def test_a_turn_that_only_calls_tools_has_empty_text_on_compatible_servers(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]], preset: str
) -> None:
    # llama-cpp-python's server renders the chat template with every message's content as a
    # string: without the key it answered 500 ("'dict object' has no attribute 'content'"), so
    # the second step of a tool loop failed there.
    await driver.chat(_compatible(preset, clients), _TOOL_TURN)
    turn = bodies[0]["messages"][1]
    assert turn["content"] == ""
    assert turn["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 2, "b": 3}'}


async def test_openai_leaves_out_the_content_of_a_turn_that_only_calls_tools(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]]
) -> None:
    await driver.chat(_openai(clients), _TOOL_TURN)
    assert "content" not in bodies[0]["messages"][1]


async def test_profile_can_ask_for_parts_back(driver: Driver, clients: Any, bodies: list[dict[str, Any]]) -> None:
    model = _compatible("llamacpp", clients, profile={"content_parts": True})
    await driver.chat(model, [{"role": "user", "content": TEXT_PARTS}])
    assert bodies[0]["messages"][0]["content"] == TEXT_PARTS


async def test_parts_with_an_image_stay_a_list(driver: Driver, clients: Any, bodies: list[dict[str, Any]]) -> None:
    # A server that takes images (vision llama.cpp) takes them only as parts: flattening would drop them.
    model = _compatible("llamacpp", clients)
    await driver.chat(model, [mm.user("What is this?", mm.image("https://example.com/x.png"))])
    content = bodies[0]["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]


async def test_stream_flattens_parts_too(driver: Driver, bodies: list[dict[str, Any]]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        chunk = {"choices": [{"index": 0, "delta": {"content": "ab"}, "finish_reason": "stop"}]}
        return httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")

    transport = httpx.MockTransport(handler)
    with httpx.Client(transport=transport) as client:
        async with httpx.AsyncClient(transport=transport) as aclient:
            model = _compatible("llamacpp", (client, aclient))
            await driver.events(model, [{"role": "user", "content": TEXT_PARTS}])
    assert bodies[0]["messages"][0]["content"] == "Say a\nthen b."


def test_content_parts_is_a_profile_field() -> None:
    assert mm.providers.ModelProfile().content_parts is True
    with pytest.raises(mm.ConfigurationError, match="content_parts"):
        mm.providers.ModelProfile().with_(content_part=False)


# ------------------------------------------------------------------------------ response_format


async def test_llamacpp_gets_a_schema_as_json_object_with_schema(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]]
) -> None:
    model = _compatible("llamacpp", clients)
    response = await driver.chat(model, "A city as JSON.", response_format=City)
    assert bodies[0]["response_format"] == {"type": "json_object", "schema": City.model_json_schema()}
    assert json.loads(response.text) == {"name": "Oslo", "population": 700000}


async def test_llamacpp_converts_an_openai_json_schema_mapping(
    driver: Driver, clients: Any, bodies: list[dict[str, Any]]
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}
    await driver.chat(_compatible("llamacpp", clients), "hi", response_format=fmt)
    await driver.chat(_compatible("llamacpp", clients), "hi", response_format="json")
    assert [body["response_format"] for body in bodies] == [
        {"type": "json_object", "schema": schema},
        {"type": "json_object"},
    ]


async def test_openai_keeps_the_json_schema_shape(driver: Driver, clients: Any, bodies: list[dict[str, Any]]) -> None:
    await driver.chat(_openai(clients), "A city as JSON.", response_format=City)
    assert bodies[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City", "schema": City.model_json_schema()},
    }


async def test_stream_sends_the_llamacpp_shape(driver: Driver, bodies: list[dict[str, Any]]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        chunk = {"choices": [{"index": 0, "delta": {"content": "{}"}, "finish_reason": "stop"}]}
        return httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")

    transport = httpx.MockTransport(handler)
    with httpx.Client(transport=transport) as client:
        async with httpx.AsyncClient(transport=transport) as aclient:
            await driver.events(_compatible("llamacpp", (client, aclient)), "hi", response_format=City)
    assert bodies[0]["response_format"]["type"] == "json_object"
    assert bodies[0]["response_format"]["schema"] == City.model_json_schema()


def test_a_parameter_llama_cpp_python_rejects_with_a_500_is_sent_once() -> None:
    # llama-cpp-python validates requests with pydantic and answers a bad one with HTTP 500.
    seen: list[httpx.Request] = []
    body = {
        "error": {
            "message": "1 validation error:\n  {'type': 'extra_forbidden', 'msg': 'Extra inputs are not permitted'}",
            "type": "internal_server_error",
        }
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, json=body)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        model = mm.model("llamacpp:any", base_url="http://127.0.0.1:8080/v1", http_client=client)
        with pytest.raises(mm.ServerError) as info:
            model.chat("hi", extra_body={"bogus": 1})
    assert info.value.retryable is False
    assert len(seen) == 1


def test_an_ordinary_500_is_still_retried() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, json={"error": {"message": "boom", "type": "internal_server_error"}})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        model = mm.retrying(
            mm.model("llamacpp:any", base_url="http://127.0.0.1:8080/v1", http_client=client, max_retries=0),
            clock=FakeClock(),
            use_budget=False,
        )
        with pytest.raises(mm.ServerError):
            model.chat("hi")
    assert len(seen) == 3
