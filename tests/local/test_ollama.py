"""Ollama native provider: request mapping, NDJSON streaming, errors, OLLAMA_HOST, listing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._codec import RequestContext
from modelmix._profile import ModelProfile
from modelmix._settings import merge_settings
from modelmix.providers._ollama_wire import OllamaCodec, OllamaStreamParser
from modelmix.providers.ollama import OllamaModel, ollama_base_url

Handler = Callable[[httpx.Request], httpx.Response]


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def model_with(handler: Handler, name: str = "llama3.2", seen: list[httpx.Request] | None = None) -> OllamaModel:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    transport = httpx.MockTransport(record)
    return OllamaModel(
        name,
        base_url="http://127.0.0.1:11434",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


def answer(model: mm.Model, stream: bool) -> mm.ChatResponse:
    """A plain call, or a stream read to its end."""
    if not stream:
        return model.chat("hi")
    with model.stream("hi") as s:
        return s.until_done()


TOOL_STREAM = ndjson(
    {"model": "llama3.2", "message": {"role": "assistant", "content": "Let me check. "}, "done": False},
    {
        "model": "llama3.2",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}},
                {"function": {"name": "get_time", "arguments": {"tz": "CET"}}},
            ],
        },
        "done": False,
    },
    {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 31,
        "eval_count": 12,
    },
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("myhost", "http://myhost:11434"),
        ("myhost:8080", "http://myhost:8080"),
        ("http://myhost", "http://myhost:80"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("https://ollama.example.com/proxy/", "https://ollama.example.com:443/proxy"),
        ("[::1]:11435", "http://[::1]:11435"),
        ("::", "http://[::1]:11434"),
        (":9999", "http://127.0.0.1:9999"),
    ],
)
def test_ollama_host_forms(value: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("OLLAMA_HOST", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_HOST", value)
    assert ollama_base_url() == expected


def test_model_string_honours_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:7000")
    model = mm.model("ollama:qwen2.5:7b", max_retries=0)
    assert isinstance(model, OllamaModel)
    assert str(model.base_url) == "http://gpu-box:7000/"
    assert model.name == "qwen2.5:7b", "model names keep their own colons"


def _call(model: str, messages: list[mm.Message], settings: dict[str, Any], *, stream: bool = True) -> RequestContext:
    return RequestContext(model, messages, merge_settings(None, settings), ModelProfile(), stream)


def test_request_body_maps_settings_messages_and_tools() -> None:
    codec = OllamaCodec("llama3.2")
    call = mm.ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    messages = [
        mm.system("Be brief"),
        mm.user("Weather?", mm.image(data=b"\x89PNG....")),
        mm.assistant(tool_calls=[call]),
        mm.tool_result("call_1", {"temp": 21}),
    ]
    body = codec.build_body(
        _call(
            "llama3.2",
            messages,
            {
                "max_tokens": 50,
                "temperature": 0.1,
                "stop": "END",
                "seed": 7,
                "tools": [mm.Tool(name="get_weather", parameters={"type": "object"})],
                "response_format": "json",
                "extra_body": {"options": {"num_ctx": 8192}, "keep_alive": "5m"},
            },
            stream=False,
        )
    )
    assert body["stream"] is False
    assert body["options"] == {"num_predict": 50, "temperature": 0.1, "seed": 7, "stop": ["END"], "num_ctx": 8192}
    assert body["format"] == "json"
    assert body["keep_alive"] == "5m"
    assert body["messages"][1]["images"]
    assert body["messages"][1]["content"] == "Weather?"
    assert body["messages"][2]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert body["messages"][3] == {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"}
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_json_schema_response_format_becomes_format_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = OllamaCodec().build_body(
        _call("m", [mm.user("x")], {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})
    )
    assert body["format"] == schema
    assert body["stream"] is True


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_with_tool_calls_usage_and_done_reason(mode: str) -> None:
    model = model_with(
        lambda r: httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=TOOL_STREAM)
    )
    if mode == "sync":
        with model.stream("Weather in Paris?") as s:
            events = list(s)
        response = s.response
    else:
        async with model.astream("Weather in Paris?") as a:
            events = [e async for e in a]
        response = a.response
    assert [e.type for e in events] == ["text", "tool_call", "tool_call", "finish", "usage"]
    assert response.text == "Let me check. "
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris", "days": 2}),
        ("get_time", {"tz": "CET"}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage == mm.Usage(input_tokens=31, output_tokens=12)
    await model.aclose()


def test_parser_is_indifferent_to_chunk_boundaries() -> None:
    whole = OllamaStreamParser().feed(TOOL_STREAM)
    parser = OllamaStreamParser()
    pieces = [parser.feed(TOOL_STREAM[i : i + 1]) for i in range(len(TOOL_STREAM))]
    assert [e for piece in pieces for e in piece] == whole
    assert parser.done


def test_error_line_before_content_is_a_typed_stream_error() -> None:
    body = ndjson({"error": "an error was encountered while running the model: unexpected EOF"})
    model = model_with(lambda r: httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=body))
    with pytest.raises(mm.InBandStreamError) as caught, model.stream("hi") as s:
        s.until_done()
    assert "unexpected EOF" in str(caught.value)
    assert isinstance(caught.value.mapped, mm.ServerError)
    assert caught.value.retryable


def test_error_line_after_content_interrupts_with_the_partial_text() -> None:
    body = ndjson(
        {"model": "llama3.2", "message": {"role": "assistant", "content": "Once upon"}, "done": False},
        {"error": "model runner has unexpectedly stopped"},
    )
    model = model_with(lambda r: httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=body))
    with pytest.raises(mm.StreamInterruptedError) as caught, model.stream("story") as s:
        s.until_done()
    assert caught.value.partial_text == "Once upon"
    assert isinstance(caught.value.__cause__, mm.InBandStreamError)


def test_stream_without_done_is_truncated() -> None:
    body = ndjson({"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": False})
    model = model_with(lambda r: httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=body))
    with pytest.raises(mm.StreamInterruptedError) as caught, model.stream("hi") as s:
        s.until_done()
    assert isinstance(caught.value.__cause__, mm.StreamTruncatedError)


@pytest.mark.parametrize("stream", [False, True])
def test_model_not_found_says_how_to_pull(stream: bool) -> None:
    body = json.dumps({"error": 'model "llama9" not found, try pulling it first'}).encode()
    model = model_with(
        lambda r: httpx.Response(404, headers={"content-type": "application/json"}, content=body), "llama9"
    )
    with pytest.raises(mm.NotFoundError) as caught:
        answer(model, stream)
    assert "ollama pull llama9" in str(caught.value)
    assert caught.value.provider == "ollama"
    assert caught.value.model == "llama9"
    assert not caught.value.retryable


def test_list_models_reads_api_tags() -> None:
    tags = {"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189, "digest": "a80c"}]}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=tags)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    found = mm.list_models("ollama", base_url="http://box:11434", http_client=client)
    assert [m.spec for m in found] == ["ollama:llama3.2:latest"]
    assert found[0].size_bytes == 2019393189
    assert found[0].details["digest"] == "a80c"
    assert seen[0].url == "http://box:11434/api/tags"


def test_unreachable_server_is_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    model = model_with(refuse)
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi")
    assert caught.value.kind == "connect"
    assert caught.value.retryable
