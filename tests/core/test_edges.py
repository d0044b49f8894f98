"""Edge paths of the core: credential refresh after a 401, plugin entry points, stream corners."""

from __future__ import annotations

import gc
import importlib.metadata
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix import _registry
from modelmix._auth import Auth
from modelmix._codec import Reply
from modelmix._events import ContentFilterEvent, FinishEvent, UsageEvent
from modelmix._exceptions import AllModelsFailedError, _transport_error_for
from modelmix._http import HTTPModel
from modelmix._streaming import NoByteParser, OpenedStream, Stream, StreamAccumulator, events_from_response
from modelmix.providers._error_bodies import error_from_body
from modelmix.providers._openai_wire import OpenAIChatCodec, OpenAIStreamParser, encode_message

from ._helpers import Chunks, Driver, chunk, completion, provider, sse_body, sse_response
from .conftest import MakeModel


def _error_from_body(status: int, headers: dict[str, str], body: bytes) -> mm.APIStatusError:
    return error_from_body(body, Reply(status, httpx.Headers(headers)))


class RotatingToken(Auth):
    """A token provider: the first token is refused, `invalidate` makes the next one fresh."""

    def __init__(self, *, refreshable: bool = True) -> None:
        self.generation = 0
        self.refreshable = refreshable

    @property
    def static(self) -> bool:
        return False

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer gen-{self.generation}"}

    def invalidate(self) -> bool:
        if not self.refreshable:
            return False
        self.generation += 1
        return True


def _token_handler(seen: list[str]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer gen-0":
            return httpx.Response(401, json={"error": {"message": "token expired"}})
        if json.loads(request.content).get("stream"):
            return sse_response(sse_body(chunk("fresh", finish="stop")))
        return httpx.Response(200, json=completion("fresh"))

    return handler


@pytest.fixture
async def token_model() -> Any:
    made: list[tuple[httpx.Client, httpx.AsyncClient]] = []

    def build(auth: RotatingToken, seen: list[str]) -> HTTPModel:
        transport = httpx.MockTransport(_token_handler(seen))
        clients = (httpx.Client(transport=transport), httpx.AsyncClient(transport=transport))
        made.append(clients)
        return HTTPModel(
            "m",
            provider=provider(
                "tok", base_url="https://tok.test/v1", auth=auth, http_client=clients[0], async_http_client=clients[1]
            ),
            codec=OpenAIChatCodec(),
        )

    yield build
    for client, aclient in made:
        client.close()
        await aclient.aclose()


@pytest.mark.parametrize("kind", ["chat", "stream"])
async def test_one_retry_with_a_refreshed_credential(driver: Driver, token_model: Any, kind: str) -> None:
    seen: list[str] = []
    model = token_model(RotatingToken(), seen)
    if kind == "chat":
        response = await driver.chat(model, "hi")
    else:
        _, response = await driver.events(model)
    assert response.text == "fresh"
    assert seen == ["Bearer gen-0", "Bearer gen-1"]


@pytest.mark.parametrize("kind", ["chat", "stream"])
async def test_no_retry_when_the_credential_cannot_refresh(driver: Driver, token_model: Any, kind: str) -> None:
    seen: list[str] = []
    model = token_model(RotatingToken(refreshable=False), seen)
    call = driver.chat(model, "hi") if kind == "chat" else driver.events(model)
    with pytest.raises(mm.AuthenticationError):
        await call
    assert seen == ["Bearer gen-0"]


async def test_static_keys_are_never_retried_after_401(driver: Driver, make_model: MakeModel) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": "no"}})

    with pytest.raises(mm.AuthenticationError):
        await driver.chat(make_model(handler), "hi")
    assert calls == [1]


async def test_context_window_from_the_catalog(make_model: MakeModel) -> None:
    model = make_model(lambda request: httpx.Response(200))
    assert model.context_window is not None
    assert model.context_window >= 128_000
    assert make_model(lambda request: httpx.Response(200), name="no-such-model-xyz").context_window is None


# ------------------------------------------------------------------------------ registry plugins


@pytest.fixture
def fresh_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = dict(_registry._registered)
    monkeypatch.setitem(_registry._state, "entry_points_loaded", False)
    plugin = EntryPoint(name="plugin", value="modelmix.providers.openai:create", group=_registry.ENTRY_POINT_GROUP)
    # The registry imports entry_points lazily from importlib.metadata, so patch it there.
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [plugin] if group == plugin.group else [])
    yield
    _registry._registered.clear()
    _registry._registered.update(saved)


def test_entry_point_plugins_are_found(fresh_entry_points: None) -> None:
    assert "plugin" not in _registry._registered
    model = mm.model("plugin:gpt-4o-mini", api_key="sk-plugin-key-000000", max_retries=0)
    assert model.provider == "openai"
    assert "plugin" in mm.list_providers()


# ------------------------------------------------------------------------------ stream corners


async def test_final_event_without_blank_line_is_flushed(driver: Driver, make_model: MakeModel) -> None:
    body = b"data: " + json.dumps(chunk("tail", finish="stop")).encode()  # EOF right after the data line

    events, response = await driver.events(make_model(lambda request: sse_response(body)))
    assert events[-1] == FinishEvent("stop")
    assert response.text == "tail"


async def test_iterating_twice_continues_the_same_stream(driver: Driver, make_model: MakeModel) -> None:
    body = sse_body(chunk("a"), chunk("b"), chunk(finish="stop"))
    model = make_model(lambda request: sse_response([body[:40], body[40:]]))
    if driver.mode == "sync":
        with model.stream("hi") as s:
            assert iter(s) is iter(s)
            first = next(iter(s))
            rest = list(s)
    else:
        async with model.astream("hi") as a:
            assert a.__aiter__() is a.__aiter__()
            first = await a.__aiter__().__anext__()
            rest = [e async for e in a]
    assert first == mm.TextDelta("a")
    assert rest[0] == mm.TextDelta("b")


def test_dropped_open_stream_is_released_by_the_collector() -> None:
    closed: list[bool] = []
    opened = OpenedStream(chunks=iter([b""]), close=lambda: closed.append(True), request_id=None, host=None, started=0)
    stream = Stream(lambda: opened, OpenAIStreamParser(), provider="p", model="m")
    stream.__enter__()
    del stream
    gc.collect()
    assert closed == [True]


def test_non_provider_errors_are_not_wrapped_after_commit() -> None:
    class Misuse(Chunks):
        def __iter__(self) -> Iterator[bytes]:
            yield sse_body(chunk("x"), done=False)
            raise httpx.StreamClosed()

    def opener() -> OpenedStream:
        return OpenedStream(chunks=iter(Misuse([])), close=lambda: None, request_id=None, host=None, started=0)

    stream = Stream(opener, OpenAIStreamParser(), provider="p", model="m")
    with pytest.raises(mm.StreamInterruptedError) as info, stream as s:
        list(s)
    assert type(info.value.__cause__) is mm.ModelMixError


def test_provider_errors_of_a_driver_without_redaction() -> None:
    def opener() -> OpenedStream:
        return OpenedStream(chunks=iter([b"data: {oops\n\n"]), close=lambda: None, request_id="r", host=None, started=0)

    with (
        pytest.raises(mm.StreamDecodeError) as info,
        Stream(opener, OpenAIStreamParser(), provider="p", model="m") as s,
    ):
        list(s)
    assert (info.value.provider, info.value.request_id) == ("p", "r")


def test_no_byte_parser() -> None:
    parser = NoByteParser()
    assert parser.done is True
    assert parser.flush() == []
    with pytest.raises(TypeError):
        parser.feed(b"x")


def test_accumulator_and_events_from_response_round_trip() -> None:
    acc = StreamAccumulator()
    acc.add(ContentFilterEvent(results={"hate": {"filtered": False}}))
    acc.add(ContentFilterEvent(results={"violence": {"filtered": True}}))
    acc.add(FinishEvent("content_filter"))
    acc.add(UsageEvent(mm.Usage(input_tokens=1)))
    acc.add("not an event")  # type: ignore[arg-type]  # ignored, but counted
    assert acc.n_events == 5
    response = acc.build(provider="p", model="m", request_id=None, latency=0.0)
    assert response.content_filter_results == {"hate": {"filtered": False}, "violence": {"filtered": True}}
    assert response.content_filtered is True
    assert response.text == ""
    assert response.message.content == ""
    bare = mm.ChatResponse(message=mm.assistant(""), provider="p")
    assert events_from_response(bare) == []
    assert bare.content_filtered is False


def test_wire_corners() -> None:
    assert encode_message(mm.user("a", mm.image("https://x.test/i.png")))["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x.test/i.png"},
    }
    # Shapes the protocol does not allow are the server's fault, reported as typed errors (they
    # used to be skipped silently, or to pass as an empty answer).
    codec = OpenAIChatCodec()
    data = {"choices": [{"index": 1, "message": {"content": "not choice 0"}}], "model": "m"}
    with pytest.raises(mm.ProviderError, match="choice with index 0") as info:
        codec.parse_response(data, Reply(200, httpx.Headers()))
    assert (info.value.code, info.value.retryable) == ("malformed_response", True)
    weird_call = {"choices": [{"index": 0, "message": {"tool_calls": [{"id": "x", "function": "oops"}, 5]}}]}
    with pytest.raises(mm.ProviderError, match=r"tool_calls\[0\]\.function` should be an object"):
        codec.parse_response(weird_call, Reply(200, httpx.Headers()))
    with pytest.raises(mm.StreamDecodeError, match="delta` should be an object"):
        OpenAIStreamParser().feed(b'data: {"choices": [{"index": 0, "delta": "not a mapping"}]}\n\n')
    with pytest.raises(mm.StreamDecodeError, match=r"tool_calls\[0\]` should be an object"):
        OpenAIStreamParser().feed(b'data: {"choices": [{"index": 0, "delta": {"tool_calls": [7]}}]}\n\n')
    parser = OpenAIStreamParser()
    events = parser.feed(b'data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]}\n\n')
    assert events == [mm.ToolCallDelta(index=0)]
    assert parser.flush() == []


def test_content_filter_error_without_details() -> None:
    error = _error_from_body(400, {}, b'{"error": {"code": "content_filter", "message": "blocked"}}')
    assert isinstance(error, mm.PromptFilteredError)
    assert error.categories == {}
    assert error.source == "prompt"
    odd = _error_from_body(400, {}, b'{"error": {"code": "content_filter", "message": "b", "innererror": {"x": 1}}}')
    assert isinstance(odd, mm.PromptFilteredError)
    assert odd.categories == {}


def test_unsupported_protocol_description() -> None:
    assert _transport_error_for(httpx.UnsupportedProtocol("x"), "sent_no_response")[1:] == ("network", "local")


def test_all_models_failed_error_is_an_exception_group() -> None:
    errors: list[Exception] = [mm.RateLimitError("slow", status=429), mm.NotFoundError("gone", status=404)]
    group = AllModelsFailedError("every model failed", errors)
    assert isinstance(group, mm.ModelMixError)
    assert str(group) == "every model failed (2 models failed)"
    assert repr(group).startswith("AllModelsFailedError('every model failed', [")
    assert group.attempts == []
    limited, rest = group.split(mm.RateLimitError)  # what ``except* RateLimitError`` does
    assert isinstance(limited, AllModelsFailedError)
    assert [type(e) for e in limited.exceptions] == [mm.RateLimitError]
    assert rest is not None
    assert [type(e) for e in rest.exceptions] == [mm.NotFoundError]
