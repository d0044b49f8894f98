"""Conformance of the Responses API codec: real recorded traffic (../shared/cassettes
openai-responses, azure-openai-responses, open-responses) replayed through `api="responses"`
models, sync and async, streamed and not; every expected fact the recording states is checked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers.azure import AzureModel
from modelmix.providers.openai import OpenAIModel

from .._support import chat_cases, replay_transport, require_shared
from ._helpers import CANARY_KEY, Driver
from .test_conformance import check_recorded_error

BACKENDS = ("openai-responses", "azure-openai-responses", "open-responses")
KNOWN_ITEMS = ("message", "reasoning", "function_call", "custom_tool_call")

ReplayModel = Callable[[dict[str, Any]], mm.Model]


def _cases() -> list[Any]:
    found = [case for backend in BACKENDS for case in chat_cases(backend) if case.values[2].get("api") == "responses"]
    return found or [pytest.param(None, None, None, id="shared-cassettes-absent")]


@pytest.fixture
async def replay_model() -> AsyncIterator[ReplayModel]:
    """A Responses model of the recording's backend whose clients answer with the recording."""
    clients: list[httpx.Client] = []
    aclients: list[httpx.AsyncClient] = []

    def build(interaction: dict[str, Any], seen: list[httpx.Request]) -> mm.Model:
        transport = replay_transport(interaction, seen)
        client, aclient = httpx.Client(transport=transport), httpx.AsyncClient(transport=transport)
        clients.append(client)
        aclients.append(aclient)
        url = httpx.URL(interaction["request"]["url"])
        name = (interaction["request"].get("json") or {}).get("model") or "gpt-4o-mini"
        base = str(url.copy_with(path=url.path.removesuffix("responses"), query=None))
        common: dict[str, Any] = {"api_key": CANARY_KEY, "http_client": client, "async_http_client": aclient}
        if url.host.endswith(".openai.azure.com"):
            return AzureModel(name, endpoint=base, api="responses", **common)
        return OpenAIModel(name, base_url=base, api="responses", **common)

    yield build  # type: ignore[misc]
    for client in clients:
        client.close()
    for aclient in aclients:
        await aclient.aclose()


def _messages(interaction: dict[str, Any]) -> str:
    sent = (interaction["request"].get("json") or {}).get("input")
    return sent if isinstance(sent, str) and sent else "hi"


def _is_sse(interaction: dict[str, Any]) -> bool:
    body: str = interaction["response"]["body"]
    return body.lstrip().startswith(("event:", "data:", ":"))


async def _check_error(driver: Driver, model: mm.Model, messages: str, expected: dict[str, Any], stream: bool) -> None:
    error = expected["error"]
    with pytest.raises(mm.APIStatusError) as info:
        await (driver.events(model, messages) if stream else driver.chat(model, messages))
    check_recorded_error(info.value, error, model)


def _check_answer(response: mm.ChatResponse, expected: dict[str, Any], provider: str) -> None:
    assert response.text == expected["text"]
    assert response.refusal == expected["refusal"]
    # `reasoning` is the summary where there is one, else the raw reasoning text.
    assert response.reasoning == (expected["reasoning"] or expected["reasoning_text"])
    assert response.reasoning_text == expected["reasoning_text"]
    assert response.model == expected["model"]
    assert response.provider == provider
    assert response.content_filtered is expected["content_filtered"]
    calls = [
        (c.kind, c.id, c.name, c.raw_arguments if c.kind == "custom" else c.arguments, c.arguments_error)
        for c in response.tool_calls
    ]
    want = [
        ("custom" if c["type"] == "custom_tool_call" else "function", c["call_id"], c["name"], c["arguments"], None)
        for c in expected["tool_calls"]
    ]
    assert calls == want
    if expected["response_status"] == "completed":
        assert response.finish_reason == ("tool_calls" if want else "stop")
    usage = expected["usage"]
    if usage is None:
        assert response.usage is None
    else:
        assert response.usage is not None
        got = response.usage
        assert (got.input_tokens, got.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
        assert (got.cached_tokens, got.reasoning_tokens) == (usage["cached_tokens"], usage["reasoning_tokens"])
    if expected["parsed_json"] is not None:
        assert json.loads(response.text) == expected["parsed_json"]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(("cassette", "interaction", "expected"), _cases())
async def test_responses_cassette(
    driver: Driver,
    replay_model: Any,
    stream: bool,
    cassette: dict[str, Any] | None,
    interaction: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> None:
    for backend in BACKENDS:
        require_shared(backend)
    assert interaction is not None
    assert expected is not None
    if _is_sse(interaction) and not stream:
        pytest.skip("a streamed recording answers stream calls only")
    seen: list[httpx.Request] = []
    model = replay_model(interaction, seen)
    provider = "azure" if isinstance(model, AzureModel) else "openai"
    messages = _messages(interaction)
    if expected["error"] is not None:
        await _check_error(driver, model, messages, expected, stream)
    elif stream:
        events, response = await driver.events(model, messages)
        _check_answer(response, expected, provider)
        _check_stream_events(events, expected)
    else:
        response = await driver.chat(model, messages)
        _check_answer(response, expected, provider)
        assert response.raw is not None
        others = [item["type"] for item in response.raw["output"] if item["type"] not in KNOWN_ITEMS]
        assert others == expected["other_output_items"]
    assert len(seen) == 1
    sent = seen[0]
    assert sent.url.path.endswith("/responses")
    assert CANARY_KEY in (sent.headers.get("authorization", "") + sent.headers.get("api-key", ""))
    body = json.loads(sent.content)
    assert body["store"] is False
    assert body.get("stream", False) is stream


def _check_stream_events(events: list[mm.StreamEvent], expected: dict[str, Any]) -> None:
    summary = "".join(e.text for e in events if isinstance(e, mm.ReasoningDelta) and e.summary)
    raw = "".join(e.text for e in events if isinstance(e, mm.ReasoningDelta) and not e.summary)
    assert summary == "\n\n".join(expected["reasoning_summary"])
    assert raw == (expected["reasoning_text"] or "")
    assert "".join(e.text for e in events if isinstance(e, mm.TextDelta)) == expected["text"]
    finishes = [e for e in events if isinstance(e, mm.FinishEvent)]
    assert len(finishes) == 1
    if expected["usage"] is not None:
        assert any(isinstance(e, mm.UsageEvent) for e in events)


@pytest.mark.parametrize("backend", BACKENDS)
def test_responses_recordings_present(backend: str) -> None:
    """Skips with a message where ../shared is absent; on CI it must find the recordings."""
    require_shared(backend)
    assert any(case.values[2].get("api") == "responses" for case in chat_cases(backend))
