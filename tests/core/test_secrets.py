"""The API key never shows: not in reprs, error texts (whole chains), logs, or echoed messages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

from ._helpers import CANARY_KEY, Driver, chunk, completion, per_event, sse_body, sse_response
from ._stub_server import running_stub
from .conftest import MakeModel


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [item.__cause__, item.__context__]


def assert_no_canary(error: BaseException) -> None:
    for item in chain(error):
        for text in (str(item), repr(item), *map(repr, item.args), repr(vars(item))):
            assert CANARY_KEY not in text, f"the key leaked through {type(item).__name__}"
            assert "0123456789abcdef" not in text


async def test_model_repr_hides_the_key(make_model: MakeModel) -> None:
    model = make_model(lambda request: httpx.Response(200))
    assert CANARY_KEY not in repr(model)
    assert repr(model) == "<OpenAIModel openai:gpt-4o-mini at api.openai.com auth=APIKeyAuth(key='…cdef')>"
    assert CANARY_KEY not in repr(model.auth)
    assert CANARY_KEY not in repr(vars(model.auth).get("secret"))


ECHO_401 = {
    "error": {
        "message": f"Incorrect API key provided: {CANARY_KEY}. You can find your API key at https://x.test.",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
}


async def test_echoed_key_is_redacted_and_hint_shows_last_four(driver: Driver, make_model: MakeModel) -> None:
    model = make_model(lambda request: httpx.Response(401, json=ECHO_401))
    for call in (lambda: driver.chat(model, "hi"), lambda: driver.enter(model)):
        with pytest.raises(mm.AuthenticationError) as info:
            await call()
        error = info.value
        assert_no_canary(error)
        assert error.key_hint == "…cdef"
        assert "Incorrect API key provided: …cdef." in error.message
        assert error.retryable is False


FAILURES: dict[str, Callable[[], httpx.Response]] = {
    "401": lambda: httpx.Response(401, json=ECHO_401),
    "500-echo": lambda: httpx.Response(500, text=f"upstream said: Bearer {CANARY_KEY}"),
    "200-error": lambda: httpx.Response(200, json={"error": {"message": f"bad key {CANARY_KEY}"}}),
    "not-json": lambda: httpx.Response(200, text=f"oops {CANARY_KEY}"),
    "connect": lambda: _raise(httpx.ConnectError("refused")),
    "timeout": lambda: _raise(httpx.ReadTimeout("slow")),
}


def _raise(error: Exception) -> httpx.Response:
    raise error


@pytest.mark.parametrize("label", list(FAILURES))
async def test_no_error_of_any_kind_carries_the_key(
    driver: Driver, make_model: MakeModel, caplog: pytest.LogCaptureFixture, label: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {CANARY_KEY}"
        return FAILURES[label]()

    model = make_model(handler)
    caplog.set_level(logging.DEBUG)
    for call in (lambda: driver.chat(model, "hi"), lambda: driver.events(model)):
        with pytest.raises(mm.ModelMixError) as info:
            await call()
        assert_no_canary(info.value)
    assert CANARY_KEY not in caplog.text


async def test_key_echoed_inside_a_stream_error_is_redacted(driver: Driver, make_model: MakeModel) -> None:
    in_band = {"error": {"message": f"key {CANARY_KEY} was revoked", "type": "authentication_error"}}
    for body in (sse_body(in_band), sse_body(chunk("partial"), in_band)):
        model = make_model(lambda request, body=body: sse_response(per_event(body)))
        with pytest.raises(mm.StreamError) as info:
            await driver.events(model)
        assert_no_canary(info.value)


async def test_debug_logs_of_successful_calls_hold_no_key(
    driver: Driver, make_model: MakeModel, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content:
            return sse_response(sse_body(chunk("ok", finish="stop")))
        return httpx.Response(200, json=completion())

    caplog.set_level(logging.DEBUG)
    model = make_model(handler)
    await driver.chat(model, "hi")
    await driver.events(model)
    assert CANARY_KEY not in caplog.text


async def test_real_socket_debug_logs_hold_no_key(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    """httpx/httpcore DEBUG logging on a real connection, including a 401 that echoes the key."""
    caplog.set_level(logging.DEBUG)
    with running_stub() as stub:
        model = OpenAIModel("gpt-4o-mini", api_key=CANARY_KEY, base_url=stub.base_url, timeout=5.0)
        try:
            with pytest.raises(mm.AuthenticationError) as info:
                await driver.chat(model, "hi")
            with pytest.raises(mm.AuthenticationError):
                await driver.enter(model)
        finally:
            await model.aclose()
        assert stub.requests[0]["headers"]["Authorization"] == f"Bearer {CANARY_KEY}", "the key did travel"
    assert_no_canary(info.value)
    assert "…cdef" in info.value.message
    assert "httpcore" in caplog.text or "httpx" in caplog.text, "DEBUG logging was captured"
    assert CANARY_KEY not in caplog.text
