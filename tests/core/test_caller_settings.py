"""A caller's mistaken setting is refused before anything is sent, never retried, and never
counts against the endpoint's circuit breaker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.resilience import EndpointRegistry


class CountingServer:
    """A MockTransport that answers 500 (what a server says to a setting it chokes on) and counts."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(500, json={"error": {"message": "invalid request"}})

    def model(self, **options: Any) -> mm.Model:
        client = httpx.Client(transport=httpx.MockTransport(self))
        aclient = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return mm.model(
            "openai:gpt-4o-mini", api_key="sk-test", http_client=client, async_http_client=aclient, **options
        )


BAD_SETTINGS = [
    ("temperature", "hot", "a number >= 0"),
    ("temperature", -0.5, "a number >= 0"),
    ("temperature", True, "a number"),
    ("top_p", 1.5, "from 0 to 1"),
    ("max_tokens", 0, "a whole number >= 1"),
    ("max_tokens", -1, "a whole number >= 1"),
    ("max_tokens", 10.5, "a whole number"),
    ("stop", 5, "a string or a list of strings"),
    ("stop", ["ok", 5], "a string or a list of strings"),
    ("seed", "42", "a whole number"),
    ("presence_penalty", 3, "from -2 to 2"),
    ("timeout", -1, "seconds > 0"),
    ("timeout", "30", "seconds > 0"),
    ("parallel_tool_calls", "yes", "True or False"),
    ("response_format", "xml", "'text', 'json'"),
    ("user", 12, "a string"),
    ("extra_body", "x", "extra_body' must be a dict"),
    ("extra_headers", {"x-tag": "é"}, "printable ASCII"),
    ("extra_headers", {"x-tag": "a\r\nInjected: 1"}, "printable ASCII"),
    ("extra_headers", {"bad name": "v"}, "not a valid header name"),
    ("extra_headers", {"x-n": 5}, "must be a string"),
]


@pytest.mark.parametrize(("key", "value", "accepted"), BAD_SETTINGS)
def test_a_bad_setting_never_reaches_the_server(key: str, value: Any, accepted: str) -> None:
    server = CountingServer()
    model = server.model()
    with pytest.raises(mm.ConfigurationError, match=key) as caught:
        model.chat("hi", **{key: value})
    assert accepted in str(caught.value)
    assert server.requests == 0


@pytest.mark.parametrize(("key", "value", "accepted"), BAD_SETTINGS[:6])
async def test_a_bad_setting_never_reaches_the_server_async(key: str, value: Any, accepted: str) -> None:
    server = CountingServer()
    model = server.model()
    with pytest.raises(mm.ConfigurationError, match=key):
        await model.achat("hi", **{key: value})
    with pytest.raises(mm.ConfigurationError, match=key):
        await _drain(model, **{key: value})
    assert server.requests == 0


async def _drain(model: mm.Model, **settings: Any) -> None:
    async with model.astream("hi", **settings) as stream:
        async for _ in stream:
            pass


def test_a_bad_setting_in_the_model_defaults_is_refused_when_built() -> None:
    with pytest.raises(mm.ConfigurationError, match="'max_tokens' must be a whole number >= 1"):
        CountingServer().model(settings={"max_tokens": 0})


def test_a_header_value_is_never_echoed() -> None:
    with pytest.raises(mm.ConfigurationError) as caught:
        CountingServer().model().chat("hi", extra_headers={"authorization": "Bearer sk-sécret"})
    assert "sécret" not in str(caught.value)


def test_a_misspelt_setting_gets_a_suggestion() -> None:
    with pytest.raises(mm.ConfigurationError, match="Did you mean 'temperature'"):
        CountingServer().model().chat("hi", temprature=0.3)  # type: ignore[call-arg]


def test_a_function_without_type_hints_as_a_tool_says_what_to_do() -> None:
    # A typed function is a tool (tests/core/test_tools.py); one whose schema cannot be built is
    # refused before sending, naming the setting, the parameter and the fix.
    def get_weather(city):  # type: ignore[no-untyped-def]
        return "sunny"

    server = CountingServer()
    with pytest.raises(mm.ConfigurationError, match=r"setting 'tools'.*'city' has no type hint; annotate"):
        server.model().chat("hi", tools=[get_weather])
    assert server.requests == 0


def test_good_settings_still_go_through() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            },
        )

    model = mm.model(
        "openai:gpt-4o-mini", api_key="sk-test", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    answer = model.chat(
        "hi",
        temperature=0,
        top_p=1,
        max_tokens=1,
        stop=("a", "b"),
        seed=3,
        timeout=httpx.Timeout(5.0),  # type: ignore[arg-type]
        tools=[tool, mm.Tool(name="g")],
        tool_choice="auto",
        extra_headers={"x-tag": "v 1"},
        extra_body={"reasoning_effort": "low"},
    )
    assert answer.text == "ok"
    assert len(seen) == 1


def test_mistakes_never_open_the_circuit_breaker() -> None:
    server = CountingServer()
    table = EndpointRegistry()
    guarded = mm.circuit_breaker(server.model(), endpoints=table)
    for _ in range(12):
        with pytest.raises(mm.ConfigurationError):
            guarded.chat("hi", extra_headers={"x-tag": "é"})
    for _ in range(12):
        with pytest.raises(mm.ConfigurationError):
            guarded.chat("hi", temperature="hot")  # type: ignore[arg-type]
    assert server.requests == 0
    assert guarded.breaker is not None
    assert guarded.breaker.state(guarded.clock.now()).value == "closed"
