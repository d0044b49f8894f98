"""OpenAI-compatible presets (llamacpp, vllm, lmstudio, openai-compatible) and their quirks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers._compat_quirks import (
    CompatStreamParser,
    estimate_prompt_tokens,
    estimate_text_tokens,
    extract_text_tool_calls,
)
from modelmix.providers._openai_wire import OpenAIStreamParser
from modelmix.providers.openai_compatible import OpenAICompatibleModel

Handler = Callable[[httpx.Request], httpx.Response]
WEATHER = mm.Tool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def sse(*chunks: dict[str, Any] | str) -> bytes:
    out = b""
    for chunk in chunks:
        data = chunk if isinstance(chunk, str) else json.dumps(chunk)
        out += f"data: {data}\n\n".encode()
    return out


def delta(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**({"content": content} if content is not None else {}), **extra}
    return {"model": "m", "choices": [{"index": 0, "delta": body, "finish_reason": finish}]}


def model_with(
    handler: Handler, *, preset: str = "llamacpp", seen: list[httpx.Request] | None = None, **options: Any
) -> OpenAICompatibleModel:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    transport = httpx.MockTransport(record)
    return OpenAICompatibleModel(
        "m",
        preset=preset,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **options,
    )


def streaming(body: bytes) -> Handler:
    return lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def answer(model: mm.Model, stream: bool) -> mm.ChatResponse:
    """A plain call, or a stream read to its end."""
    if not stream:
        return model.chat("hi")
    with model.stream("hi") as s:
        return s.until_done()


# ------------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("spec", "url"),
    [
        ("llamacpp:any", "http://127.0.0.1:8080/v1/"),
        ("vllm:Qwen/Qwen2.5-7B-Instruct", "http://127.0.0.1:8000/v1/"),
        ("lmstudio:qwen2.5-7b-instruct", "http://127.0.0.1:1234/v1/"),
    ],
)
def test_presets_default_to_their_port_on_loopback(spec: str, url: str) -> None:
    model = mm.model(spec, max_retries=0)
    assert isinstance(model, OpenAICompatibleModel)
    assert str(model.base_url) == url
    assert model.provider == spec.split(":")[0]


def test_llamacpp_needs_no_model_name() -> None:
    assert mm.model("llamacpp:", max_retries=0).name == "default"


@pytest.mark.parametrize(
    ("preset", "url_env", "key_env"),
    [
        ("llamacpp", "LLAMACPP_BASE_URL", "LLAMACPP_API_KEY"),
        ("vllm", "VLLM_BASE_URL", "VLLM_API_KEY"),
        ("lmstudio", "LMSTUDIO_BASE_URL", "LMSTUDIO_API_KEY"),
        ("openai-compatible", "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY"),
    ],
)
def test_environment_configures_url_and_key(
    preset: str, url_env: str, key_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(url_env, "http://gpu-box:9000/v1")
    monkeypatch.setenv(key_env, "sk-local-secret-123456")
    seen: list[httpx.Request] = []
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    model = model_with(lambda r: httpx.Response(200, json=body), preset=preset, seen=seen)
    assert model.chat("hi").text == "ok"
    assert str(seen[0].url) == "http://gpu-box:9000/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-local-secret-123456"
    assert "sk-local-secret-123456" not in repr(model)


def test_no_key_sends_no_authorization_header() -> None:
    seen: list[httpx.Request] = []
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    model_with(lambda r: httpx.Response(200, json=body), seen=seen).chat("hi")
    assert "authorization" not in seen[0].headers


def test_base_url_without_v1_gets_it_for_presets() -> None:
    assert str(OpenAICompatibleModel("m", preset="vllm", base_url="http://box:8000").base_url) == "http://box:8000/v1/"
    assert str(OpenAICompatibleModel("m", base_url="http://box/api/v1").base_url) == "http://box/api/v1/"


def test_openai_compatible_requires_a_base_url() -> None:
    with pytest.raises(mm.ConfigurationError, match="OPENAI_COMPATIBLE_BASE_URL"):
        mm.model("openai-compatible:llama3.2")


def test_ollama_v1_through_openai_compatible() -> None:
    model = mm.model("openai-compatible:llama3.2", base_url="http://127.0.0.1:11434/v1", max_retries=0)
    assert isinstance(model, OpenAICompatibleModel)
    assert str(model.base_url) == "http://127.0.0.1:11434/v1/"
    assert model.provider == "openai-compatible"


# ------------------------------------------------------------------------------------ error quirks


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        ({"error": "No models loaded. Please load a model in the developer page first."}, mm.NotFoundError),
        ({"error": {"message": "Model 'qwen9' not found"}}, mm.NotFoundError),
        ({"error": "Trying to keep the first 5000 tokens when context length is 4096"}, mm.ContextLengthExceededError),
        ({"error": "Unexpected endpoint or method."}, mm.ServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_lmstudio_http_200_with_an_error_body_raises_it(body: dict[str, Any], error_class: type, stream: bool) -> None:
    model = model_with(lambda r: httpx.Response(200, json=body), preset="lmstudio")
    with pytest.raises(error_class):
        answer(model, stream)


def test_llamacpp_exceed_context_size_error_gives_limit_and_requested() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 4103,
            "n_ctx": 4096,
        }
    }
    model = model_with(lambda r: httpx.Response(400, json=body))
    with pytest.raises(mm.ContextLengthExceededError) as caught:
        model.chat("long")
    assert (caught.value.limit, caught.value.requested) == (4096, 4103)
    assert not caught.value.retryable


def test_llamacpp_503_loading_model_is_retryable_with_a_hint() -> None:
    body = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    model = model_with(lambda r: httpx.Response(503, json=body))
    with pytest.raises(mm.ServerError) as caught:
        model.chat("hi")
    assert caught.value.retryable
    assert caught.value.retry_after == 1.0
    assert "still loading the model" in caught.value.message


# ------------------------------------------------------------------------------------ stream quirks


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_missing_stream_usage_is_estimated(mode: str) -> None:
    body = sse(delta("Hello"), delta(" world"), delta(finish="stop"), "[DONE]")
    model = model_with(streaming(body))
    if mode == "sync":
        with model.stream("Say hello to the world") as s:
            response = s.until_done()
    else:
        async with model.astream("Say hello to the world") as s:
            response = await s.until_done()
    assert response.usage is not None
    assert response.usage.estimated
    assert response.usage.output_tokens == estimate_text_tokens("Hello world") == 2
    assert response.usage.input_tokens == estimate_prompt_tokens([mm.user("Say hello to the world")])
    await model.aclose()


def test_reported_stream_usage_wins_over_the_estimate() -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}
    model = model_with(streaming(sse(delta("Hi"), delta(finish="stop"), usage, "[DONE]")))
    with model.stream("hi") as s:
        assert s.until_done().usage == mm.Usage(input_tokens=11, output_tokens=2)


def test_whole_tool_call_without_index_and_stop_finish() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    body = sse(delta("", tool_calls=[call]), delta("", finish="stop"), "[DONE]")
    with model_with(streaming(body)).stream("weather", tools=[WEATHER]) as s:
        response = s.until_done()
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_9", "get_weather", {"city": "Oslo"})]
    assert response.finish_reason == "tool_calls"


def test_tool_call_text_becomes_tool_calls_across_odd_chunk_boundaries() -> None:
    text = 'Sure.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    body = sse(*(delta(p) for p in pieces), delta(finish="stop"), "[DONE]")
    with model_with(streaming(body)).stream("weather", tools=[WEATHER]) as s:
        deltas = list(s.text_deltas())
        response = s.response
    assert "".join(deltas) == "Sure."
    assert response.text == "Sure."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert response.finish_reason == "tool_calls"


def test_tool_call_text_is_left_alone_without_tools_or_when_invalid() -> None:
    text = 'See <tool_call>{"name": "x"}</tool_call>'
    with model_with(streaming(sse(delta(text), delta(finish="stop"), "[DONE]"))).stream("no tools") as s:
        assert s.until_done().text == text
    broken = "a <tool_call>{not json}</tool_call> b <tool"
    with model_with(streaming(sse(delta(broken), delta(finish="stop"), "[DONE]"))).stream("x", tools=[WEATHER]) as s:
        response = s.until_done()
    assert response.text == broken
    assert response.tool_calls == []


def test_non_streamed_tool_call_text_is_repaired() -> None:
    content = '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    response = model_with(lambda r: httpx.Response(200, json=body)).chat("weather", tools=[WEATHER])
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_0", "get_weather", {"city": "Rome"})]
    assert response.usage is not None
    assert response.usage.estimated


def test_text_tool_calls_can_be_switched_off() -> None:
    content = '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    model = model_with(lambda r: httpx.Response(200, json=body), text_tool_calls=False)
    assert model.chat("x", tools=[WEATHER]).text == content


def test_extract_keeps_unparseable_blocks_and_surrounding_text() -> None:
    text, calls = extract_text_tool_calls(
        'A <tool_call>{"name":"f","arguments":"{}"}</tool_call> B <tool_call>[1]</tool_call>'
    )
    assert text == "A  B <tool_call>[1]</tool_call>"
    assert [(c.name, c.arguments) for c in calls] == [("f", {})]


def test_compat_parser_holds_back_only_a_possible_tag_prefix() -> None:
    parser = CompatStreamParser(OpenAIStreamParser(), prompt_tokens=None, parse_text_tool_calls=True)
    first = parser.feed(sse(delta("Hello <to")))
    assert [e.text for e in first if isinstance(e, mm.TextDelta)] == ["Hello "]
    second = parser.feed(sse(delta("day")))
    assert [e.text for e in second if isinstance(e, mm.TextDelta)] == ["<today"]


def test_estimates_are_plausible() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("Hello, world!") == 4
    assert estimate_text_tokens("internationalization") == 4
    assert estimate_text_tokens("日本語") == 3
    assert estimate_prompt_tokens([mm.user("hi")]) == 3 + 4 + 1


# ------------------------------------------------------------------------------------ listing


def test_list_models_reads_v1_models_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "vllm-secret-key-0001")
    seen: list[httpx.Request] = []
    listing = {
        "object": "list",
        "data": [{"id": "Qwen/Qwen2.5-7B", "object": "model", "owned_by": "vllm", "max_model_len": 32768}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=listing)

    found = mm.list_models("vllm:", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert [(m.spec, m.owned_by, m.details["max_model_len"]) for m in found] == [
        ("vllm:Qwen/Qwen2.5-7B", "vllm", 32768)
    ]
    assert str(seen[0].url) == "http://127.0.0.1:8000/v1/models"
    assert seen[0].headers["authorization"] == "Bearer vllm-secret-key-0001"


async def test_alist_models_maps_errors() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(401, json={"error": "bad key"})))
    with pytest.raises(mm.AuthenticationError):
        await mm.alist_models("lmstudio", async_http_client=client)
    await client.aclose()


def test_list_models_rejects_unknown_providers() -> None:
    with pytest.raises(mm.ConfigurationError, match="listing models is not supported"):
        mm.list_models("nope")
