"""`llamacpp:` and `openai-compatible:` against a real llama.cpp server (llama-cpp-python's
``python -m llama_cpp.server`` with SmolLM2-135M-Instruct), started once for the session.

Short prompts and small `max_tokens` keep this to seconds on two cores.
"""

from __future__ import annotations

from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.openai_compatible import OpenAICompatibleModel

from .conftest import LlamaServer

WEATHER = mm.Tool(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 1}


@pytest.fixture(params=["llamacpp", "openai-compatible"])
async def server_model(request: pytest.FixtureRequest, llama_server: LlamaServer) -> Any:
    if request.param == "llamacpp":
        model = mm.model("llamacpp:smollm2", base_url=llama_server.base_url, max_retries=0)
    else:
        # Any key works: the server does not check it, but it must travel as a bearer token.
        model = mm.model(
            "openai-compatible:smollm2", base_url=llama_server.base_url, api_key="not-checked-123456", max_retries=0
        )
    assert isinstance(model, OpenAICompatibleModel)
    yield model
    await model.aclose()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_chat_reports_usage_and_model(server_model: OpenAICompatibleModel, mode: str) -> None:
    args = ("Say hello.",)
    response = (
        server_model.chat(*args, max_tokens=8, **GREEDY)
        if mode == "sync"
        else await server_model.achat(*args, max_tokens=8, **GREEDY)
    )
    assert response.text.strip()
    assert response.model == "smollm2"
    assert response.provider == server_model.provider
    assert response.finish_reason in ("stop", "length")
    assert response.usage is not None
    assert not response.usage.estimated
    assert response.usage.input_tokens > 5
    assert 0 < response.usage.output_tokens <= 8


async def test_max_tokens_cuts_with_length(server_model: OpenAICompatibleModel) -> None:
    response = server_model.chat("Write a long poem about the sea.", max_tokens=4, **GREEDY)
    assert response.finish_reason == "length"
    assert response.usage is not None
    assert response.usage.output_tokens == 4


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_has_no_server_usage_so_it_is_estimated(server_model: OpenAICompatibleModel, mode: str) -> None:
    if mode == "sync":
        with server_model.stream("Name a color.", max_tokens=8, **GREEDY) as s:
            deltas = list(s.text_deltas())
        response = s.response
    else:
        async with server_model.astream("Name a color.", max_tokens=8, **GREEDY) as a:
            deltas = [d async for d in a.text_deltas()]
        response = a.response
    assert len(deltas) >= 2, "the answer should arrive in several pieces"
    assert "".join(deltas) == response.text
    assert response.finish_reason in ("stop", "length")
    assert response.usage is not None
    assert response.usage.estimated
    # Same prompt, not streamed: the server's own count is the reference for the estimate.
    plain = server_model.chat("Name a color.", max_tokens=8, **GREEDY)
    exact = plain.usage
    assert exact is not None
    assert not exact.estimated
    if response.finish_reason == plain.finish_reason == "length":
        assert exact.output_tokens == 8
        assert abs(response.usage.output_tokens - exact.output_tokens) <= 4
    # The template adds a hidden default system prompt the estimate cannot see: it is a lower bound.
    assert 0 < response.usage.input_tokens <= exact.input_tokens


@pytest.mark.parametrize("stream", [False, True])
async def test_forced_tool_call(server_model: OpenAICompatibleModel, stream: bool) -> None:
    settings: dict[str, Any] = {"tools": [WEATHER], "tool_choice": "get_weather", "max_tokens": 24, **GREEDY}
    if stream:
        with server_model.stream("What is the weather in Paris?", **settings) as s:
            events = list(s)
            response = s.response
        assert any(isinstance(e, mm.ToolCallDelta) for e in events)
    else:
        response = server_model.chat("What is the weather in Paris?", **settings)
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.name == "get_weather", "a name repeated in every delta must not be concatenated"
    assert call.arguments_error is None
    assert set(call.arguments) <= {"city"}
    assert call.id


async def test_context_overflow_is_typed_with_numbers(
    server_model: OpenAICompatibleModel, llama_server: LlamaServer
) -> None:
    with pytest.raises(mm.ContextLengthExceededError) as caught:
        server_model.chat("word " * 700, max_tokens=8)
    assert caught.value.limit == llama_server.n_ctx
    assert caught.value.requested is not None
    assert caught.value.requested > llama_server.n_ctx
    assert caught.value.status == 400
    assert not caught.value.retryable


async def test_context_overflow_when_streaming_is_an_empty_truncated_stream(
    server_model: OpenAICompatibleModel,
) -> None:
    # llama-cpp-python's server answers 200 and then closes the stream without a single event
    # (the error is raised inside its generator). modelmix must not call that a success: it is a
    # retryable truncation before the commit point, so a fallback chain moves on.
    with pytest.raises(mm.StreamTruncatedError) as caught:
        async with server_model.astream("word " * 700, max_tokens=8) as s:
            await s.until_done()
    assert caught.value.partial_text == ""
    assert caught.value.phase == "pre_commit_stream"
    assert caught.value.retryable


def test_listing_the_server(llama_server: LlamaServer) -> None:
    found = mm.list_models("llamacpp", base_url=llama_server.base_url)
    assert [m.spec for m in found] == ["llamacpp:smollm2"]
    model = mm.model(found[0].spec, base_url=llama_server.base_url, max_retries=0)
    assert isinstance(model, OpenAICompatibleModel)
    assert [m.id for m in model.list_models()] == ["smollm2"]


def test_nothing_listening_is_a_connect_error() -> None:
    from .conftest import free_port

    model = mm.model("llamacpp:x", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi")
    assert caught.value.kind == "connect"
    assert caught.value.phase == "not_sent"
