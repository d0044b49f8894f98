"""Streams, the same tests through `stream()` and `astream()`."""

from __future__ import annotations

import gc
import json
import logging
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._events import ContentFilterEvent, FinishEvent, ReasoningDelta, UsageEvent
from modelmix._http import HTTPModel
from modelmix.providers._openai_wire import OpenAIChatCodec

from ._helpers import Chunks, Driver, chunk, completion, per_event, provider, sse_body, sse_response
from .conftest import MakeModel

USAGE = {"prompt_tokens": 11, "completion_tokens": 7}


def answer(*chunks_: bytes | list[bytes], **kwargs: Any) -> Any:
    """A handler that answers every request with this SSE body (split as given)."""
    body: list[bytes] = []
    for piece in chunks_:
        body.extend(piece if isinstance(piece, list) else [piece])

    def handler(request: httpx.Request) -> httpx.Response:
        return sse_response(body, **kwargs)

    return handler


HELLO = sse_body(chunk("Hel"), chunk("lo"), chunk(finish="stop"), {"choices": [], "usage": USAGE})


async def test_events_and_final_response(driver: Driver, make_model: MakeModel) -> None:
    events, response = await driver.events(make_model(answer(HELLO)))
    assert events == [
        mm.TextDelta("Hel"),
        mm.TextDelta("lo"),
        FinishEvent("stop"),
        UsageEvent(mm.Usage(input_tokens=11, output_tokens=7)),
    ]
    assert response.text == "Hello"
    assert response.finish_reason == "stop"
    assert response.usage == mm.Usage(input_tokens=11, output_tokens=7)
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.request_id == "req-test"
    assert response.provider == "openai"
    assert response.latency > 0


async def test_text_deltas(driver: Driver, make_model: MakeModel) -> None:
    deltas, response = await driver.text_deltas(make_model(answer(HELLO)))
    assert deltas == ["Hel", "lo"]
    assert response.text == "Hello"


async def test_until_done(driver: Driver, make_model: MakeModel) -> None:
    response = await driver.until_done(make_model(answer([HELLO[:7], HELLO[7:30], HELLO[30:]])))
    assert response.text == "Hello"
    assert response.usage is not None


async def test_response_before_the_end_is_a_clear_error(driver: Driver, make_model: MakeModel) -> None:
    model = make_model(answer(HELLO))
    if driver.mode == "sync":
        with model.stream("hi") as s:
            with pytest.raises(mm.ModelMixError, match="has not finished yet"):
                _ = s.response
            assert s.until_done().text == "Hello"
            assert s.text == "Hello"
            assert "finished" in repr(s)
    else:
        async with model.astream("hi") as a:
            with pytest.raises(mm.ModelMixError, match="has not finished yet"):
                _ = a.response
            assert (await a.until_done()).text == "Hello"
            assert "finished" in repr(a)


async def test_a_closed_stream_cannot_be_reopened(driver: Driver, make_model: MakeModel) -> None:
    model = make_model(answer(HELLO))
    if driver.mode == "sync":
        s = model.stream("hi")
        assert "not started" in repr(s)
        s.close()
        s.close()
        with pytest.raises(mm.ModelMixError, match="was closed"), s:
            pass
    else:
        a = model.astream("hi")
        await a.aclose()
        with pytest.raises(mm.ModelMixError, match="was closed"):
            async with a:
                pass


async def test_iterating_without_with_opens_lazily(driver: Driver, make_model: MakeModel) -> None:
    model = make_model(answer(HELLO))
    if driver.mode == "sync":
        s = model.stream("hi")
        assert [e for e in s if isinstance(e, mm.TextDelta)] == [mm.TextDelta("Hel"), mm.TextDelta("lo")]
        assert s.response.text == "Hello"
    else:
        a = model.astream("hi")
        assert [e async for e in a if isinstance(e, mm.TextDelta)] == [mm.TextDelta("Hel"), mm.TextDelta("lo")]
        assert a.response.text == "Hello"


async def test_tool_call_deltas_with_index(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(
        chunk(
            tool_calls=[{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]
        ),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
        chunk(tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "put", "arguments": "{}"}}]),
        chunk(tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "get", "arguments": '"Oslo"}'}}]),
        chunk(finish="tool_calls"),
    )
    events, response = await driver.events(make_model(answer(body)))
    assert events[0] == mm.ToolCallDelta(index=0, id="call_a", name="get", arguments="")
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_a", "get", {"city": "Oslo"}),
        ("call_b", "put", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.message.content is None
    assert response.text == ""


async def test_whole_tool_calls_without_index(driver: Driver, make_model: MakeModel) -> None:
    # Azure catalog models and Ollama /v1: each call whole, no index, finish_reason "stop".
    body = sse_body(
        chunk(
            tool_calls=[
                {"id": "c1", "function": {"name": "a", "arguments": '{"x": 1}'}},
                {"id": "c2", "function": {"name": "b", "arguments": {"y": 2}}},
            ]
        ),
        chunk(tool_calls=[{"function": {"name": "c", "arguments": "{}"}}]),
        chunk(finish="stop"),
    )
    _, response = await driver.events(make_model(answer(body)))
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("c1", "a", {"x": 1}),
        ("c2", "b", {"y": 2}),
        (None, "c", {}),
    ]
    assert response.finish_reason == "tool_calls"


async def test_invalid_tool_arguments_are_kept_raw(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(chunk(tool_calls=[{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{oops"}}]))
    _, response = await driver.events(make_model(answer(body)))
    (call,) = response.tool_calls
    assert call.arguments == {}
    assert call.raw_arguments == "{oops"
    assert call.arguments_error is not None
    assert call.arguments_error.startswith("invalid JSON")


async def test_azure_pre_chunk_and_filters(driver: Driver, make_model: MakeModel) -> None:
    prompt_filter = {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
    body = sse_body(
        {"id": "", "model": "", "choices": [], "prompt_filter_results": [prompt_filter]},
        chunk("Hi", model="gpt-4o-2024-08-06"),
        {
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "stop",
                    "content_filter_results": {"violence": {"filtered": False, "severity": "safe"}},
                }
            ],
            "usage": USAGE,
        },
    )
    events, response = await driver.events(make_model(answer(body)))
    assert events[0] == ContentFilterEvent(results=prompt_filter, source="prompt")
    assert response.model == "gpt-4o-2024-08-06"
    assert response.prompt_filter_results == [prompt_filter]
    assert response.content_filter_results == {"violence": {"filtered": False, "severity": "safe"}}
    assert response.content_filtered is False
    assert response.usage is not None
    assert response.usage.input_tokens == 11


async def test_usage_on_a_choices_empty_chunk_with_details(driver: Driver, make_model: MakeModel) -> None:
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    body = sse_body(chunk("x"), chunk(finish="stop"), {"choices": [], "usage": usage})
    events, response = await driver.events(make_model(answer(body)))
    assert isinstance(events[-1], UsageEvent)
    assert response.usage == mm.Usage(input_tokens=20, output_tokens=9, cached_tokens=8, reasoning_tokens=4)
    assert response.usage.total_tokens == 29


async def test_reasoning_deltas(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "more"}}]},
        chunk("answer", finish="stop"),
    )
    events, response = await driver.events(make_model(answer(body)))
    assert events[0] == ReasoningDelta("think ")
    assert response.reasoning == "think more"
    assert response.text == "answer"


async def test_finish_without_done_is_accepted_with_a_warning(
    driver: Driver, make_model: MakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    body = sse_body(chunk("ok"), chunk(finish="stop"), done=False)
    with caplog.at_level(logging.WARNING, logger="modelmix"):
        _, response = await driver.events(make_model(answer(body)))
    assert response.text == "ok"
    assert "without its terminator" in caplog.text


async def test_truncation_before_content_is_a_truncated_error(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}, done=False)
    with pytest.raises(mm.StreamTruncatedError) as info:
        await driver.events(make_model(answer(body)))
    error = info.value
    assert error.phase == "pre_commit_stream"
    assert error.retryable is True
    assert error.partial_text == ""
    assert error.request_id == "req-test"
    assert (error.provider, error.model) == ("openai", "gpt-4o-mini")


async def test_truncation_after_content_is_interrupted_with_partial_text(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(chunk("Once upon"), chunk(" a time"), done=False)
    with pytest.raises(mm.StreamInterruptedError) as info:
        await driver.events(make_model(answer(per_event(body))))
    error = info.value
    assert error.partial_text == "Once upon a time"
    assert error.phase == "post_commit_stream"
    assert error.retryable is False
    assert error.n_events == 2
    assert error.request_id == "req-test"
    assert isinstance(error.__cause__, mm.StreamTruncatedError)
    assert error.__cause__.partial_text == "Once upon a time"


async def test_interrupted_carries_partial_tool_calls_and_usage(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(
        chunk(tool_calls=[{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a": 1}'}}]),
        {"choices": [], "usage": USAGE},
        '{"broken',
        done=False,
    )
    with pytest.raises(mm.StreamInterruptedError) as info:
        await driver.events(make_model(answer(per_event(body))))
    assert [c.name for c in info.value.partial_tool_calls] == ["f"]
    assert info.value.usage == mm.Usage(input_tokens=11, output_tokens=7)
    assert isinstance(info.value.__cause__, mm.StreamDecodeError)


async def test_error_event_before_content(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded", "code": "rate_limit"}})
    with pytest.raises(mm.InBandStreamError) as info:
        await driver.events(make_model(answer(body)))
    error = info.value
    assert isinstance(error.mapped, mm.RateLimitError)
    assert error.retryable is True
    assert error.code == "rate_limit"
    assert "Rate limit reached" in str(error)
    assert (error.provider, error.model, error.request_id) == ("openai", "gpt-4o-mini", "req-test")


async def test_error_in_the_same_chunk_as_content_is_pre_commit(driver: Driver, make_model: MakeModel) -> None:
    # Nothing reached the caller yet, so the failure may still be retried invisibly.
    body = sse_body(chunk("never seen"), {"error": {"message": "server overloaded", "type": "server_error"}})
    with pytest.raises(mm.InBandStreamError):
        await driver.events(make_model(answer(body)))


async def test_error_event_after_content(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(chunk("partial"), {"error": {"message": "server overloaded", "type": "server_error"}})
    with pytest.raises(mm.StreamInterruptedError) as info:
        await driver.events(make_model(answer(per_event(body))))
    assert info.value.partial_text == "partial"
    cause = info.value.__cause__
    assert isinstance(cause, mm.InBandStreamError)
    assert isinstance(cause.mapped, mm.ServerError)


async def test_malformed_json_is_a_decode_error_without_payload(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body('{"choices": [SECRET-PAYLOAD')
    with pytest.raises(mm.StreamDecodeError) as info:
        await driver.events(make_model(answer(body)))
    error = info.value
    assert "SECRET-PAYLOAD" not in str(error)
    assert "SECRET-PAYLOAD" not in repr(error)
    assert error.phase is None or error.phase == "pre_commit_stream"
    assert error.provider == "openai"
    assert error.length == len('{"choices": [SECRET-PAYLOAD')


async def test_oversized_line_is_response_too_large(driver: Driver, make_model: MakeModel) -> None:
    huge = b"data: " + b"x" * ((1 << 20) + 10)
    with pytest.raises(mm.ResponseTooLargeError) as info:
        await driver.events(make_model(answer([huge[:500_000], huge[500_000:]])))
    assert info.value.limit == 1 << 20
    assert info.value.phase == "pre_commit_stream"
    assert "cap" in str(info.value)


async def test_plain_json_answer_to_a_stream_request(driver: Driver, make_model: MakeModel) -> None:
    # LM Studio and some proxies ignore "stream": true and answer with one JSON body.
    seen: list[httpx.Request] = []
    message = {
        "role": "assistant",
        "content": "whole",
        "reasoning_content": "why",
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    data = completion()
    data["choices"][0]["message"] = message
    data["choices"][0]["content_filter_results"] = {"hate": {"filtered": True}}
    data["prompt_filter_results"] = [{"prompt_index": 0}]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=data, headers={"x-request-id": "r1"})

    events, response = await driver.events(make_model(handler))
    assert json.loads(seen[0].content)["stream"] is True
    assert "text/event-stream" in seen[0].headers["accept"]
    assert mm.TextDelta("whole") in events
    assert response.text == "whole"
    assert response.reasoning == "why"
    assert response.request_id == "r1"
    assert [c.name for c in response.tool_calls] == ["f"]
    assert response.finish_reason == "tool_calls"
    assert response.content_filtered is True
    assert response.prompt_filter_results == [{"prompt_index": 0}]


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}, mm.AuthenticationError),
        (404, {"error": {"message": "no such model", "code": "model_not_found"}}, mm.NotFoundError),
        (429, {"error": {"message": "slow down", "type": "tokens"}}, mm.RateLimitError),
        (503, {"detail": "overloaded"}, mm.ServerError),
    ],
)
async def test_http_error_status_raises_on_enter(
    driver: Driver, make_model: MakeModel, status: int, body: dict[str, Any], cls: type[mm.APIStatusError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"x-request-id": "req-err", "retry-after": "2"})

    with pytest.raises(cls) as info:
        await driver.enter(make_model(handler))
    error = info.value
    assert error.status == status
    assert error.request_id == "req-err"
    assert error.phase == "status"
    assert error.host == "api.openai.com"
    if status == 429:
        assert error.retry_after == 2.0


async def test_transport_failure_while_streaming(driver: Driver, make_model: MakeModel) -> None:
    class Failing(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield sse_body(chunk("some"), done=False)
            raise httpx.RemoteProtocolError("peer closed connection")

        async def __aiter__(self) -> Any:
            yield sse_body(chunk("some"), done=False)
            raise httpx.RemoteProtocolError("peer closed connection")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Failing())

    with pytest.raises(mm.StreamInterruptedError) as info:
        await driver.events(make_model(handler))
    cause = info.value.__cause__
    assert isinstance(cause, mm.TransportError)
    assert cause.kind == "protocol"
    assert cause.phase == "post_commit_stream"
    assert info.value.partial_text == "some"


async def test_connect_failure_on_open(driver: Driver, make_model: MakeModel) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(mm.TransportError) as info:
        await driver.enter(make_model(handler))
    assert info.value.kind == "connect"
    assert info.value.phase == "not_sent"


async def test_leaving_early_closes_the_response(driver: Driver, make_model: MakeModel) -> None:
    closed: list[str] = []

    class Tracking(Chunks):
        def close(self) -> None:
            closed.append("sync")

        async def aclose(self) -> None:
            closed.append("async")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Tracking([HELLO]))

    stream = await driver.open_and_peek(make_model(handler))
    assert closed == [driver.mode]
    assert stream.committed is True
    with pytest.raises(mm.ModelMixError, match="has not finished"):
        _ = stream.response


async def test_rest_is_drained_after_done(driver: Driver, make_model: MakeModel) -> None:
    read: list[bytes] = []
    pieces = [HELLO, b": trailing comment\n\n", b""]

    class Tracking(Chunks):
        def __iter__(self) -> Any:
            for piece in pieces:
                read.append(piece)
                yield piece

        async def __aiter__(self) -> Any:
            for piece in pieces:
                read.append(piece)
                yield piece

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Tracking([]))

    _, response = await driver.events(make_model(handler))
    assert response.text == "Hello"
    assert read == pieces, "the body is read to its end so the connection can be reused"


async def test_stream_settings_reach_the_body(driver: Driver, make_model: MakeModel) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse_response(HELLO)

    await driver.events(make_model(handler), "hi", temperature=0.5, extra_headers={"x-trace": "1"})
    body = json.loads(seen[0].content)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.5
    assert seen[0].headers["x-trace"] == "1"


async def test_bad_input_fails_at_the_call_site(driver: Driver, make_model: MakeModel) -> None:
    model = make_model(answer(HELLO))
    open_stream: Any = model.stream if driver.mode == "sync" else model.astream
    with pytest.raises(mm.ConfigurationError, match="unknown setting"):
        open_stream("hi", temprature=1)


async def test_dropped_stream_releases_its_connection(make_model: MakeModel) -> None:
    closed: list[bool] = []

    class Tracking(Chunks):
        def close(self) -> None:
            closed.append(True)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Tracking([HELLO]))

    s = make_model(handler).stream("hi")
    next(iter(s))  # opened and suspended mid-stream, then dropped without close()
    del s
    gc.collect()
    assert closed == [True]


async def test_async_token_auth_is_fetched_at_open() -> None:
    class TokenAuth(mm.Auth):
        calls = 0

        @property
        def static(self) -> bool:
            return False

        async def aheaders(self) -> dict[str, str]:
            TokenAuth.calls += 1
            return {"authorization": f"Bearer token-{TokenAuth.calls}"}

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if json.loads(request.content).get("stream"):
            return sse_response(HELLO)
        return httpx.Response(200, json=completion("plain"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        model = HTTPModel(
            "m",
            provider=provider("local", base_url="http://localhost:1/v1", auth=TokenAuth(), async_http_client=client),
            codec=OpenAIChatCodec(),
        )
        stream = model.astream("hi")
        assert TokenAuth.calls == 0, "the token is fetched when the stream opens, not before"
        async with stream as s:
            assert (await s.until_done()).text == "Hello"
        assert (await model.achat("hi")).text == "plain"
        await model.aclose()
    assert [r.headers["authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]
    assert str(seen[0].url) == "http://localhost:1/v1/chat/completions"
