"""Errors leave the codec complete: provider, model, host, request id and key hint are set when
the error is built, and a credential the server echoed never reaches the message."""

from __future__ import annotations

import httpx
import pytest

import modelmix as mm
from modelmix._codec import ErrorContext, Reply
from modelmix._exceptions import InBandStreamError
from modelmix.providers._ollama_wire import OllamaCodec
from modelmix.providers._openai_wire import OpenAIChatCodec

KEY = "sk-echoed-0123456789abcdef"
CONTEXT = ErrorContext(
    provider="openai", model="gpt-4o", host="api.test", request_id="req_1", key_hint="…cdef", secrets=(KEY,)
)


def test_a_status_error_is_built_with_its_context() -> None:
    body = (
        b'{"error": {"message": "Incorrect API key provided: sk-echoed-0123456789abcdef", "code": "invalid_api_key"}}'
    )
    error = OpenAIChatCodec().parse_error(body, Reply(401, httpx.Headers(), context=CONTEXT))
    assert isinstance(error, mm.AuthenticationError)
    assert (error.provider, error.model, error.host, error.request_id) == ("openai", "gpt-4o", "api.test", "req_1")
    assert error.key_hint == "…cdef"
    assert KEY not in error.message
    assert KEY not in repr(error.args)


def test_an_error_body_sent_with_200_is_built_with_its_context() -> None:
    data = {"error": {"message": "Model not loaded", "status": 404}}
    with pytest.raises(mm.NotFoundError) as caught:
        OpenAIChatCodec().parse_response(data, Reply(200, httpx.Headers(), context=CONTEXT))
    assert (caught.value.provider, caught.value.request_id, caught.value.status) == ("openai", "req_1", 404)


def test_ollama_missing_model_is_built_with_its_context() -> None:
    body = b'{"error": "model \\"llama9\\" not found, try pulling it first"}'
    error = OllamaCodec("llama9").parse_error(body, Reply(404, httpx.Headers(), context=CONTEXT))
    assert isinstance(error, mm.NotFoundError)
    assert (error.provider, error.host, error.request_id) == ("openai", "api.test", "req_1")
    assert "ollama pull llama9" in error.message


def test_a_loading_server_is_retryable_with_a_hint() -> None:
    error = OpenAIChatCodec().parse_error(b'{"error": {"message": "Loading model"}}', Reply(503, httpx.Headers()))
    assert error.retryable is True
    assert error.retry_after == 1.0
    assert "still loading" in error.message


def test_a_rate_limit_reset_header_feeds_retry_after_on_any_backend() -> None:
    headers = httpx.Headers({"x-ratelimit-reset-requests": "2s", "x-ratelimit-remaining-requests": "0"})
    error = OpenAIChatCodec().parse_error(b'{"error": {"message": "slow down"}}', Reply(429, headers))
    assert isinstance(error, mm.RateLimitError)
    assert error.retry_after == 2.0


def test_an_error_inside_a_stream_is_built_with_the_bound_context() -> None:
    from modelmix.providers._openai_wire import OpenAIStreamParser

    parser = OpenAIStreamParser()
    parser.bind(CONTEXT)
    payload = b'data: {"error": {"message": "bad key sk-echoed-0123456789abcdef", "type": "server_error"}}\n\n'
    with pytest.raises(InBandStreamError) as caught:
        parser.feed(payload)
    error = caught.value
    assert (error.provider, error.model, error.host, error.request_id) == ("openai", "gpt-4o", "api.test", "req_1")
    assert KEY not in error.message
    assert error.mapped is not None
    assert (error.mapped.provider, error.mapped.request_id) == ("openai", "req_1")
    assert KEY not in error.mapped.message
