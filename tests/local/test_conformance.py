"""Conformance: the Ollama and OpenAI-compatible providers against real recorded traffic.

Every expected fact in ../shared/cassettes/{ollama-native, ollama-openai, vllm, openai-compatible}
is replayed through `httpx.MockTransport`, sync and async, through the same path a user takes
(`chat` for plain calls, `stream` for streamed ones), and compared with modelmix's documented
normalisations: a turn with tool calls finishes with "tool_calls"; usage a server did not send
is estimated (and marked so); ``<tool_call>`` text becomes tool calls when tools were offered.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers._compat_quirks import extract_text_tool_calls
from modelmix.providers.ollama import OllamaModel
from modelmix.providers.openai_compatible import OpenAICompatibleModel

from .._support import chat_cases, replay_transport, require_shared

PRESET_OF = {"ollama-openai": "openai-compatible", "vllm": "vllm", "openai-compatible": "openai-compatible"}
MODES = ["sync", "async"]


def _base_url(url: str, suffix: str) -> str:
    assert url.split("?")[0].endswith(suffix), url
    return url.split("?")[0][: -len(suffix)]


def build(backend: str, interaction: dict[str, Any], seen: list[httpx.Request]) -> mm.Model:
    request = interaction["request"]
    name = (request["json"] or {}).get("model", "m")
    transport = replay_transport(interaction, seen)
    clients: dict[str, Any] = {
        "http_client": httpx.Client(transport=transport),
        "async_http_client": httpx.AsyncClient(transport=transport),
    }
    if backend == "ollama-native":
        return OllamaModel(name, base_url=_base_url(request["url"], "/api/chat"), **clients)
    base_url = _base_url(request["url"], "/chat/completions")
    return OpenAICompatibleModel(name, preset=PRESET_OF[backend], base_url=base_url, **clients)


def call_arguments(interaction: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    body = interaction["request"]["json"] or {}
    settings: dict[str, Any] = {}
    if body.get("tools"):
        settings["tools"] = body["tools"]
    return body["messages"], settings


async def run(
    model: mm.Model, mode: str, stream: bool, messages: list[Any], settings: dict[str, Any]
) -> mm.ChatResponse:
    if not stream:
        return model.chat(messages, **settings) if mode == "sync" else await model.achat(messages, **settings)
    if mode == "sync":
        with model.stream(messages, **settings) as s:
            return s.until_done()
    async with model.astream(messages, **settings) as s:
        return await s.until_done()


def check(response: mm.ChatResponse, expected: dict[str, Any], *, tools_offered: bool, backend: str) -> None:
    text, tool_calls = expected["text"], expected["tool_calls"]
    if tools_offered and backend != "ollama-native" and "<tool_call>" in text:
        text, extracted = extract_text_tool_calls(text)
        assert extracted, "the recorded <tool_call> text should parse"
        tool_calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in extracted]
    assert response.text == text
    assert [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls] == tool_calls
    assert response.reasoning == expected["reasoning"]
    finish = expected["finish_reason"]
    assert response.finish_reason == ("tool_calls" if tool_calls and finish == "stop" else finish)
    assert response.model == expected["model"]
    assert response.content_filtered is expected["content_filtered"]
    if expected["usage"] is None:
        assert response.usage is not None
        assert response.usage.estimated, "missing usage must be estimated"
        assert response.usage.input_tokens > 0
        assert response.usage.output_tokens > 0
    else:
        assert response.usage is not None
        assert not response.usage.estimated
        assert (response.usage.input_tokens, response.usage.output_tokens) == (
            expected["usage"]["input_tokens"],
            expected["usage"]["output_tokens"],
        )


async def _conformance(backend: str, cassette: Any, interaction: Any, expected: Any, mode: str) -> None:
    require_shared(backend)
    seen: list[httpx.Request] = []
    model = build(backend, interaction, seen)
    messages, settings = call_arguments(interaction)
    try:
        if expected["error"] is not None:
            with pytest.raises(mm.APIStatusError) as caught:
                await run(model, mode, expected["stream"], messages, settings)
            error = caught.value
            assert error.status == expected["error"]["status"]
            assert expected["error"]["message"] in error.message
            code = expected["error"]["code"]
            assert error.code == (None if code is None else str(code))
            assert error.error_type == expected["error"]["type"]
            assert error.provider == model.provider
            assert error.model == model.name
            if error.status == 404:
                assert isinstance(error, mm.NotFoundError)
                assert not error.retryable
            if error.status == 429:
                assert isinstance(error, mm.RateLimitError)
                assert error.retryable
        else:
            response = await run(model, mode, expected["stream"], messages, settings)
            check(response, expected, tools_offered=bool(settings.get("tools")), backend=backend)
            assert response.provider == model.provider
    finally:
        await model.aclose()
    sent = json.loads(seen[-1].content)
    assert seen[-1].url.path == httpx.URL(interaction["request"]["url"]).path
    assert sent["model"] == interaction["request"]["json"]["model"]
    if backend == "ollama-native":
        assert sent["stream"] is expected["stream"], "Ollama streams unless told otherwise"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cassette", "interaction", "expected"), list(chat_cases("ollama-native")))
async def test_ollama_native(cassette: Any, interaction: Any, expected: Any, mode: str) -> None:
    await _conformance("ollama-native", cassette, interaction, expected, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cassette", "interaction", "expected"), list(chat_cases("ollama-openai")))
async def test_ollama_openai(cassette: Any, interaction: Any, expected: Any, mode: str) -> None:
    await _conformance("ollama-openai", cassette, interaction, expected, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cassette", "interaction", "expected"), list(chat_cases("vllm")))
async def test_vllm(cassette: Any, interaction: Any, expected: Any, mode: str) -> None:
    await _conformance("vllm", cassette, interaction, expected, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("cassette", "interaction", "expected"), list(chat_cases("openai-compatible")))
async def test_openai_compatible(cassette: Any, interaction: Any, expected: Any, mode: str) -> None:
    await _conformance("openai-compatible", cassette, interaction, expected, mode)


def test_ollama_not_found_names_the_pull_command() -> None:
    require_shared("ollama-native")
    case = next(p for p in chat_cases("ollama-native") if p.values[2]["error"] is not None)
    _, interaction, _ = case.values
    model = build("ollama-native", interaction, [])
    with pytest.raises(mm.NotFoundError) as caught:
        model.chat("Why is the sky blue?")
    assert "ollama pull nonexistent-model:latest" in str(caught.value)
    model.close()


def test_every_backend_has_cases() -> None:
    for backend in ("ollama-native", "ollama-openai", "vllm", "openai-compatible"):
        require_shared(backend)
        assert list(chat_cases(backend)), backend
