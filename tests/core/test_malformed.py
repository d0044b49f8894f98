"""Malformed answers (HTTP 200, valid JSON, wrong shape) are typed errors that fall back.

They used to escape as raw ``TypeError``/``ValueError``/pydantic ``ValidationError`` — which
skip retries and fallback — or, for ``choices: []``, to pass as an empty answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.resilience._faults import fault_kind, fault_of

from ._helpers import CANARY_KEY, Driver, chunk, completion, per_event, sse_body, sse_response
from .conftest import MakeModel


def _body(**changes: Any) -> dict[str, Any]:
    body = completion("Hello!")
    body.update(changes)
    return body


def _with_message(**message: Any) -> dict[str, Any]:
    return _body(choices=[{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}])


MALFORMED_BODIES = {
    "model is a number": (_body(model=98765), "`model` should be a string, received 98765"),
    "usage count is text": (_body(usage={"prompt_tokens": "abc"}), "`usage.prompt_tokens` should be a whole number"),
    "usage count is a list": (_body(usage={"completion_tokens": [1]}), "received [1]"),
    "usage is a list": (_body(usage=[1]), "`usage` should be an object"),
    "tool-call id is a number": (
        _with_message(content=None, tool_calls=[{"id": 7, "type": "function", "function": {"name": "f"}}]),
        "`choices[0].message.tool_calls[0].id` should be a string, received 7",
    ),
    "tool-call arguments are a number": (
        _with_message(tool_calls=[{"id": "c", "function": {"name": "f", "arguments": 3}}]),
        "arguments` should be a JSON string or an object",
    ),
    "finish reason is a number": (
        _body(choices=[{"index": 0, "message": {"content": "x"}, "finish_reason": 1}]),
        "`choices[0].finish_reason` should be a string",
    ),
    "choices is empty": (_body(choices=[]), "`choices` should be a list with at least one choice, received []"),
    "content is a number": (_with_message(content=42), "`choices[0].message.content` should be a string"),
}


def _answer(body: dict[str, Any] | bytes, status: int = 200) -> httpx.MockTransport:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content, headers={"x-request-id": "r1"}))


@pytest.mark.parametrize(("body", "says"), list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES))
async def test_a_malformed_body_is_a_typed_server_fault(
    driver: Driver, make_model: MakeModel, body: dict[str, Any], says: str
) -> None:
    with pytest.raises(mm.ProviderError) as info:
        await driver.chat(make_model(_answer(body)), "hi")
    error = info.value
    assert type(error) is mm.ProviderError
    assert says in error.message
    assert (error.code, error.status, error.retryable) == ("malformed_response", 200, True)
    assert (error.provider, error.model, error.request_id) == ("openai", "gpt-4o-mini", "r1")
    # The server's fault, like a body that is not JSON: retried, counted by the breaker, fallen back on.
    assert fault_kind(error) == "provider_error"
    assert (fault_of(error).breaker, fault_of(error).fall_back) == ("failure", "yes")
    # Nothing chains a pydantic or JSON error that would repeat the body.
    assert error.__context__ is None
    assert error.__cause__ is None


async def test_what_was_received_is_capped_and_never_a_credential(driver: Driver, make_model: MakeModel) -> None:
    body = _body(model={"echo": CANARY_KEY, "padding": "x" * 5_000})
    with pytest.raises(mm.ProviderError) as info:
        await driver.chat(make_model(_answer(body)), "hi")
    error = info.value
    assert CANARY_KEY not in str(error)
    assert CANARY_KEY[:8] not in repr(error)
    assert "x" * 200 not in error.message
    assert len(error.message) < 400


STREAMS = {
    "usage count is text": (
        [chunk("Hi"), chunk(finish="stop"), {"choices": [], "usage": {"prompt_tokens": "abc"}}],
        "`usage.prompt_tokens` should be a whole number",
    ),
    "usage count is a list": (
        [chunk("Hi"), chunk(finish="stop", usage={"prompt_tokens": 1, "completion_tokens": [1]})],
        "`usage.completion_tokens` should be a whole number, received [1]",
    ),
    "tool-call index is text": (
        [chunk(tool_calls=[{"index": "a", "id": "c", "function": {"name": "f"}}]), chunk(finish="tool_calls")],
        "`choices[0].delta.tool_calls[0].index` should be a whole number",
    ),
}


@pytest.mark.parametrize(("payloads", "says"), list(STREAMS.values()), ids=list(STREAMS))
async def test_a_malformed_stream_chunk_is_a_decode_error(
    driver: Driver, make_model: MakeModel, payloads: list[dict[str, Any]], says: str
) -> None:
    model = make_model(lambda request: sse_response(per_event(sse_body(*payloads))))
    with pytest.raises(mm.StreamError) as info:
        await driver.events(model)
    error = info.value
    # After content reached the caller it is an interruption caused by the decode error.
    decode = error.__cause__ if isinstance(error, mm.StreamInterruptedError) else error
    assert isinstance(decode, mm.StreamDecodeError)
    assert says in decode.message
    assert decode.code == "malformed_response"
    assert decode.provider == "openai"


@pytest.mark.parametrize(
    "event",
    ['{"choices": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"usage": {"prompt_tokens": ' + "9" * 5_000 + "}}"],
    ids=["nested too deep", "5000-digit number"],
)
async def test_json_that_python_cannot_decode_is_a_decode_error(
    driver: Driver, make_model: MakeModel, event: str
) -> None:
    model = make_model(lambda request: sse_response(sse_body(event)))
    with pytest.raises(mm.StreamDecodeError, match="not valid JSON"):
        await driver.events(model)


def test_ollama_malformed_answers() -> None:
    from modelmix._codec import Reply
    from modelmix.providers._ollama_wire import OllamaCodec, OllamaStreamParser

    codec = OllamaCodec("llama3.2")
    body = {"model": "llama3.2", "message": {"role": "assistant", "content": "hi"}, "done": True, "eval_count": "abc"}
    with pytest.raises(mm.ProviderError, match="`eval_count` should be a whole number") as info:
        codec.parse_response(body, Reply(200, httpx.Headers()))
    assert info.value.code == "malformed_response"
    line = json.dumps({**body, "eval_count": [1]}).encode() + b"\n"
    with pytest.raises(mm.StreamDecodeError, match="received \\[1\\]"):
        OllamaStreamParser(codec).feed(line)
    with pytest.raises(mm.StreamDecodeError, match="not valid JSON"):
        OllamaStreamParser(codec).feed(b"[" * 100_000 + b"\n")


# ----------------------------------------------------------------------------- fallback


BAD_ANSWERS = {
    "model is a number": lambda request: httpx.Response(200, json=_body(model=12345)),
    "tool-call id is a number": lambda request: httpx.Response(
        200, json=_with_message(tool_calls=[{"id": 7, "function": {"name": "f", "arguments": "{}"}}])
    ),
    "usage count is text": lambda request: httpx.Response(200, json=_body(usage={"prompt_tokens": "abc"})),
    "choices is empty": lambda request: httpx.Response(200, json=_body(choices=[])),
}


@pytest.mark.parametrize("bad_answer", list(BAD_ANSWERS.values()), ids=list(BAD_ANSWERS))
async def test_a_chain_falls_back_when_a_member_answers_a_malformed_200(
    driver: Driver, make_model: MakeModel, bad_answer: Any
) -> None:
    bad = make_model(bad_answer, name="bad-model")
    healthy = make_model(lambda request: httpx.Response(200, json=completion("from the healthy model")))
    chain = mm.fallback(bad, healthy, breakers=False)
    response = await driver.chat(chain, "hi")
    assert response.text == "from the healthy model"
    assert [(a.model, a.error) for a in response.attempts] == [("bad-model", "ProviderError"), ("gpt-4o-mini", None)]


async def test_a_chain_falls_back_when_a_stream_starts_with_a_malformed_chunk(
    driver: Driver, make_model: MakeModel
) -> None:
    bad_chunk = {**chunk("never shown"), "model": 12345}
    bad = make_model(lambda request: sse_response(sse_body(bad_chunk, chunk(finish="stop"))), name="bad-model")
    healthy = make_model(lambda request: sse_response(sse_body(chunk("healthy"), chunk(finish="stop"))))
    chain = mm.fallback(bad, healthy, breakers=False)
    _, response = await driver.events(chain)
    assert response.text == "healthy"
    assert [a.error for a in response.attempts] == ["StreamDecodeError", None]


@pytest.mark.parametrize(
    ("tool_calls", "says"),
    [
        (
            [{"id": "a", "function": {"name": "f", "arguments": 5}}],
            "arguments must be a JSON string or a dict, not int",
        ),
        ("abc", "tool_calls must be a list of tool calls, not str"),
    ],
)
async def test_a_caller_tool_call_of_the_wrong_shape_is_a_configuration_error(
    driver: Driver, make_model: MakeModel, tool_calls: Any, says: str
) -> None:
    # The arguments case was a raw TypeError from json.loads; nothing may be sent either way.
    model = make_model(lambda request: pytest.fail("a caller's mistake must not reach the server"))
    with pytest.raises(mm.ConfigurationError, match=says):
        await driver.chat(model, [{"role": "assistant", "tool_calls": tool_calls}, {"role": "user", "content": "go"}])


@pytest.mark.parametrize("arguments", ['{"a": ' + "9" * 5_000 + "}", "[" * 100_000], ids=["5000 digits", "too deep"])
async def test_tool_call_arguments_python_cannot_decode_are_kept_raw(
    driver: Driver, make_model: MakeModel, arguments: str
) -> None:
    # A raw ValueError / RecursionError from json.loads before; now the call keeps its raw text
    # and says why it has no parsed arguments, as for any invalid JSON.
    body = _with_message(content=None, tool_calls=[{"id": "c", "function": {"name": "f", "arguments": arguments}}])
    response = await driver.chat(make_model(_answer(body)), "hi")
    (call,) = response.tool_calls
    assert (call.arguments, call.raw_arguments, call.arguments_error) == ({}, arguments, "JSON too large to decode")


async def test_a_text_tool_call_python_cannot_decode_stays_text(driver: Driver, make_model: MakeModel) -> None:
    # Servers without a tool parser write calls as <tool_call> text; one nested too deep to
    # decode was a raw RecursionError, it is now left in the text like any invalid block.
    text = "<tool_call>" + "[" * 100_000 + "</tool_call>"
    model = make_model(_answer(_with_message(content=text)), profile={"text_tool_calls": True})
    response = await driver.chat(model, "hi", tools=[mm.Tool(name="f", parameters={"type": "object"})])
    assert (response.text, response.tool_calls) == (text, [])


UNDECODABLE = {
    "a 200 with a 5,000-digit number": (200, b'{"id": ' + b"9" * 5_000 + b"}", mm.ProviderError),
    "a 200 nested 100,000 deep": (200, b"[" * 100_000, mm.ProviderError),
    "a 500 nested 100,000 deep": (500, b"[" * 100_000, mm.ServerError),
    "a 400 with a 5,000-digit number": (400, b'{"error": {"code": ' + b"9" * 5_000 + b"}}", mm.BadRequestError),
}


@pytest.mark.parametrize(("status", "body", "expected"), list(UNDECODABLE.values()), ids=list(UNDECODABLE))
async def test_json_python_cannot_decode_is_a_typed_error(
    driver: Driver, make_model: MakeModel, status: int, body: bytes, expected: type[mm.ProviderError]
) -> None:
    # json.loads raises ValueError (integer too long) or RecursionError (nesting), not JSONDecodeError.
    with pytest.raises(expected) as info:
        await driver.chat(make_model(_answer(body, status)), "hi")
    assert info.value.status == status
    assert info.value.__context__ is None or not isinstance(info.value.__context__, RecursionError)
