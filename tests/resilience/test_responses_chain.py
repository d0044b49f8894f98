"""A chain mixes the two OpenAI wire protocols: Responses and Chat Completions answers have the same
shape, fall back into each other, and a call that continues server-side state
(``previous_response_id``) is never replayed against another member nor retried once sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm

from .conftest import FakeClock

CHAT_ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Paris",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"fr"}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3},
}
RESPONSES_ANSWER = {
    "id": "resp_1",
    "object": "response",
    "model": "gpt-4o-mini",
    "status": "completed",
    "output": [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris"}]},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q":"fr"}'},
    ],
    "usage": {"input_tokens": 9, "output_tokens": 3},
}


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


RESPONSES_STREAM = _sse(
    [
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Par"},
        {"type": "response.output_text.delta", "output_index": 0, "delta": "is"},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": ""},
        },
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"q":"fr"}'},
        {"type": "response.completed", "response": RESPONSES_ANSWER},
    ]
)


class Server:
    """One endpoint serving both ``/chat/completions`` and ``/responses``; `fail` answers every
    request with that status (or refuses the connection with 0). Requests are recorded."""

    def __init__(self, fail: int | None = None) -> None:
        self.fail = fail
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.fail == 0:
            raise httpx.ConnectError("connection refused", request=request)
        if self.fail is not None:
            return httpx.Response(self.fail, json={"error": {"message": "unavailable", "type": "server_error"}})
        streamed = json.loads(request.content).get("stream")
        if request.url.path.endswith("/responses"):
            if streamed:
                return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=RESPONSES_STREAM)
            return httpx.Response(200, json=RESPONSES_ANSWER)
        assert not streamed, "this server streams Responses only"
        return httpx.Response(200, json=CHAT_ANSWER)

    def model(self, api: str, **options: Any) -> mm.Model:
        transport = httpx.MockTransport(self)
        return mm.model(
            "openai:gpt-4o-mini",
            api=api,
            api_key="sk-test",
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **options,
        )


def shape(response: mm.ChatResponse) -> tuple[Any, ...]:
    calls = [(c.id, c.name, c.arguments) for c in response.tool_calls]
    usage = response.usage
    assert usage is not None
    return response.text, calls, response.finish_reason, (usage.input_tokens, usage.output_tokens), response.model


def test_both_protocols_give_the_same_response() -> None:
    server = Server()
    chat, responses = server.model("chat"), server.model("responses")
    assert shape(chat.chat("capital of France?")) == shape(responses.chat("capital of France?"))
    with responses.stream("capital of France?") as streamed:
        streamed.until_done()
    assert shape(streamed.response) == shape(chat.chat("capital of France?"))
    assert server.paths == ["/v1/chat/completions", "/v1/responses", "/v1/responses", "/v1/chat/completions"]


@pytest.mark.parametrize(("first", "second"), [("responses", "chat"), ("chat", "responses")])
async def test_a_chain_falls_back_between_the_protocols(first: str, second: str) -> None:
    down, up = Server(fail=503), Server()
    chain = mm.fallback(mm.retrying(down.model(first), max_retries=0), up.model(second))
    direct = up.model(second).chat("hi")
    answered = chain.chat("hi")
    assert shape(answered) == shape(direct)
    assert [a.error for a in answered.attempts] == ["ServerError", None]
    assert down.paths[0].endswith("/responses" if first == "responses" else "/chat/completions")
    assert shape(await chain.achat("hi")) == shape(direct)


async def test_a_stream_falls_back_from_chat_to_responses() -> None:
    down, up = Server(fail=503), Server()
    chain = mm.fallback(mm.retrying(down.model("chat"), max_retries=0), up.model("responses"))
    async with chain.astream("hi") as stream:
        text = "".join([delta async for delta in stream.text_deltas()])
    assert text == "Paris"
    assert shape(stream.response) == shape(up.model("chat").chat("hi"))


STATEFUL = {"extra_body": {"previous_response_id": "resp_0", "store": True}}


def test_a_stateful_call_is_refused_by_a_chain_before_anything_is_sent() -> None:
    first, second = Server(), Server()
    chain = mm.fallback(first.model("responses"), second.model("chat"))
    with pytest.raises(mm.ConfigurationError, match="previous_response_id"):
        chain.chat("and then?", **STATEFUL)  # type: ignore[arg-type]
    assert first.paths == second.paths == []


async def _call(model: mm.Model, mode: str, **settings: Any) -> None:
    if mode == "chat":
        model.chat("and then?", **settings)
    elif mode == "achat":
        await model.achat("and then?", **settings)
    else:
        async with model.astream("and then?", **settings) as stream:
            await stream.until_done()


@pytest.mark.parametrize("mode", ["chat", "achat", "stream"])
async def test_a_stateful_call_is_not_retried_once_sent(mode: str, clock: FakeClock) -> None:
    server = Server(fail=500)
    model = mm.retrying(server.model("responses"), max_retries=2, clock=clock)
    with pytest.raises(mm.ServerError):
        await _call(model, mode, **STATEFUL)
    assert len(server.paths) == 1
    # The same call without server-side state is retried as usual.
    server.paths.clear()
    with pytest.raises(mm.ServerError):
        await _call(model, mode)
    assert len(server.paths) == 3


def test_a_stateful_call_that_never_reached_the_server_is_retried(clock: FakeClock) -> None:
    server = Server(fail=0)
    model = mm.retrying(server.model("responses"), max_retries=2, clock=clock)
    with pytest.raises(mm.TransportError):
        model.chat("and then?", **STATEFUL)  # type: ignore[arg-type]
    assert len(server.paths) == 2  # a refused connection is retried once (the fault table's rule)


def test_api_option_is_checked() -> None:
    with pytest.raises(mm.ConfigurationError, match="api="):
        Server().model("soap")


def test_auto_follows_the_profile() -> None:
    server = Server()
    reasoning = mm.model(
        "openai:gpt-5-mini",
        api="auto",
        api_key="sk-test",
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    plain = mm.model(
        "openai:gpt-4o-mini",
        api="auto",
        api_key="sk-test",
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    assert (reasoning.profile.preferred_api, plain.profile.preferred_api) == ("responses", "chat")
    reasoning.chat("hi")
    plain.chat("hi")
    assert server.paths == ["/v1/responses", "/v1/chat/completions"]
