"""Conformance: real recorded traffic (../shared/cassettes) replayed through OpenAIModel.

Each recorded response goes through `httpx.MockTransport`; the result must match the facts the
cassette file states (text, tool calls, finish reason, usage, model, or the typed error).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import modelmix as mm

from .._support import chat_cases, replay_transport, require_shared
from ._helpers import Driver
from .conftest import MakeModel

ERROR_TYPES: dict[int, type[mm.APIStatusError]] = {
    400: mm.BadRequestError,
    401: mm.AuthenticationError,
    403: mm.PermissionDeniedError,
    404: mm.NotFoundError,
    409: mm.ConflictError,
    422: mm.UnprocessableEntityError,
    429: mm.RateLimitError,
    500: mm.ServerError,
}


def check_recorded_error(raised: mm.APIStatusError, error: dict[str, Any], model: mm.Model) -> None:
    """`raised` is the typed error the recording's expected `error` facts describe."""
    assert type(raised) is ERROR_TYPES[error["status"]]
    assert raised.status == error["status"]
    assert raised.message == error["message"]
    assert raised.code == (None if error["code"] is None else str(error["code"]))
    assert raised.error_type == error["type"]
    assert raised.model == model.name
    assert raised.retryable is (error["status"] == 429 or error["status"] >= 500)


def _base_url(interaction: dict[str, Any]) -> str:
    url = httpx.URL(interaction["request"]["url"])
    path = url.path.removesuffix("/chat/completions")
    return str(url.copy_with(path=path, query=None))


def _request_messages(interaction: dict[str, Any]) -> list[dict[str, Any]]:
    body = interaction["request"].get("json") or {}
    messages: list[dict[str, Any]] = body.get("messages") or [{"role": "user", "content": "hi"}]
    return messages


async def _replay(
    driver: Driver, make_model: MakeModel, interaction: dict[str, Any], expected: dict[str, Any], *, base_url: bool
) -> None:
    seen: list[httpx.Request] = []
    body = interaction["request"].get("json") or {}
    options: dict[str, Any] = {"base_url": _base_url(interaction)} if base_url else {}
    model = make_model(replay_transport(interaction, seen), name=body.get("model") or "gpt-4o-mini", **options)
    messages = _request_messages(interaction)

    if expected["error"] is not None:
        error = expected["error"]
        call = driver.events(model, messages) if expected["stream"] else driver.chat(model, messages)
        with pytest.raises(mm.APIStatusError) as info:
            await call
        check_recorded_error(info.value, error, model)
        assert info.value.provider == "openai"
    else:
        if expected["stream"]:
            events, response = await driver.events(model, messages)
            assert events, "a successful stream yields events"
        else:
            response = await driver.chat(model, messages)
        assert response.text == expected["text"]
        assert response.reasoning == expected["reasoning"]
        assert response.finish_reason == expected["finish_reason"]
        assert response.model == expected["model"]
        assert response.provider == "openai"
        assert response.content_filtered is expected["content_filtered"]
        if expected["usage"] is None:
            assert response.usage is None
        else:
            assert response.usage is not None
            assert response.usage.input_tokens == expected["usage"]["input_tokens"]
            assert response.usage.output_tokens == expected["usage"]["output_tokens"]
        got_calls = [(c.id, c.name, c.arguments, c.arguments_error) for c in response.tool_calls]
        want_calls = [(c["id"], c["name"], c["arguments"], None) for c in expected["tool_calls"]]
        assert got_calls == want_calls
        request_id = interaction["response"]["headers"].get("x-request-id")
        assert response.request_id == request_id

    # The request we sent went where the recording's did, with our key and no other.
    assert len(seen) == 1
    sent = seen[0]
    assert sent.url.path.endswith("/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-CANARY-0123456789abcdef"
    if base_url:
        assert sent.url.host == httpx.URL(interaction["request"]["url"]).host


def cases(*backends: str) -> list[Any]:
    """The shared cases, or one placeholder that skips with require_shared's message."""
    found = [case for backend in backends for case in chat_cases(backend)]
    return found or [pytest.param(backends, None, None, id="shared-cassettes-absent")]


@pytest.mark.parametrize(("cassette", "interaction", "expected"), cases("openai"))
async def test_openai_cassette(
    driver: Driver,
    make_model: MakeModel,
    cassette: dict[str, Any],
    interaction: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> None:
    require_shared("openai")
    assert interaction is not None
    assert expected is not None
    await _replay(driver, make_model, interaction, expected, base_url=False)


@pytest.mark.parametrize(("cassette", "interaction", "expected"), cases("openai-compatible", "vllm"))
async def test_openai_compatible_cassette(
    driver: Driver,
    make_model: MakeModel,
    cassette: dict[str, Any],
    interaction: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> None:
    require_shared("openai-compatible")
    require_shared("vllm")
    assert interaction is not None
    assert expected is not None
    await _replay(driver, make_model, interaction, expected, base_url=True)


@pytest.mark.parametrize("backend", ["openai", "openai-compatible", "vllm"])
def test_shared_cassettes_present(backend: str) -> None:
    """Skips with a message where ../shared is absent; on CI it must find the recordings."""
    require_shared(backend)
    assert list(chat_cases(backend)), f"no chat interactions in ../shared/cassettes/{backend}"
