"""The cloud presets against real recorded traffic (../shared/cassettes): OpenRouter, Groq,
DeepSeek, Gemini and Bedrock. Each recorded answer is replayed through the preset, not a generic
OpenAI model, so the default address, the auth header, the provider name and the quirks of each
cloud (reasoning fields, keep-alive padding and SSE comments, error details beside ``message``)
are checked against what the service really sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import modelmix as mm

from .._support import SHARED_CASSETTES, load_cassette, replay_transport, require_shared
from ._helpers import CANARY_KEY, Driver

DIRECTORY = "openai-compatible"

RECORDINGS: dict[str, tuple[str, dict[str, Any]]] = {
    # file stem → (provider prefix, extra options); no base_url: the preset's default must be
    # the address the recording was made against.
    "crewai__test_deepseek_r1_with_open_router": ("openrouter", {}),
    "pydantic-ai__test_openrouter_errors_raised": ("openrouter", {}),
    "pydantic-ai__test_openrouter_streaming_reasoning": ("openrouter", {}),
    "pydantic-ai__test_openrouter_thinking_high_emits_effort_high": ("openrouter", {}),
    "pydantic-ai__test_groq_native_output": ("groq", {}),
    "pydantic-ai__test_tool_use_failed_error": ("groq", {}),
    "pydantic-ai__test_deepseek_model_thinking_part": ("deepseek", {}),
    "pydantic-ai__test_compatible_api_with_tool_calls_without_id": ("gemini", {}),
    # Bedrock's "mantle" endpoint: reached with base_url=, as the docs say.
    "pydantic-ai__test_safeguard_chat_routing": (
        "bedrock",
        {"base_url": "https://bedrock-mantle.us-east-1.api.aws/v1"},
    ),
}

# What each error's message adds after the service's own words (the quirk the preset repairs).
ERROR_DETAILS = {
    "pydantic-ai__test_openrouter_errors_raised": (
        "(Google: google/gemini-2.0-flash-exp:free is temporarily rate-limited"
    ),
    "pydantic-ai__test_tool_use_failed_error": '(the model wrote: {"name": "get_something_by_name"',
}

ERROR_TYPES: dict[int, type[mm.APIStatusError]] = {400: mm.BadRequestError, 429: mm.RateLimitError}


def _cases() -> list[Any]:
    found = []
    for stem, (prefix, options) in RECORDINGS.items():
        path = SHARED_CASSETTES / DIRECTORY / f"{stem}.json"
        if not path.exists():
            continue
        cassette = load_cassette(path)
        for expected in cassette["expected"]:
            interaction = cassette["interactions"][expected["interaction"]]
            found.append(
                pytest.param(
                    stem, prefix, options, interaction, expected, id=f"{prefix}-{stem}#{expected['interaction']}"
                )
            )
    return found or [pytest.param("", "", {}, None, None, id="shared-cassettes-absent")]


def _model(prefix: str, name: str, transport: httpx.MockTransport, **options: Any) -> mm.Model:
    return mm.model(
        f"{prefix}:{name}",
        api_key=CANARY_KEY,
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **options,
    )


def test_every_recording_named_here_exists() -> None:
    require_shared(DIRECTORY)
    missing = [stem for stem in RECORDINGS if not (SHARED_CASSETTES / DIRECTORY / f"{stem}.json").exists()]
    assert not missing


@pytest.mark.parametrize(("stem", "prefix", "options", "interaction", "expected"), _cases())
async def test_cloud_preset_replays_the_recording(
    driver: Driver,
    stem: str,
    prefix: str,
    options: dict[str, Any],
    interaction: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> None:
    require_shared(DIRECTORY)
    assert interaction is not None
    assert expected is not None
    seen: list[httpx.Request] = []
    body = interaction["request"].get("json") or {}
    model = _model(prefix, body.get("model") or "any-model", replay_transport(interaction, seen), **options)
    messages = body.get("messages") or "hi"
    try:
        if expected["error"] is not None:
            await _check_error(driver, model, messages, stem, prefix, expected)
        else:
            await _check_answer(driver, model, messages, prefix, expected)
    finally:
        await model.aclose()

    # The request went where the recording's did, with our key as a bearer and nothing else.
    assert len(seen) == 1
    sent = seen[0]
    assert str(sent.url) == interaction["request"]["url"]
    assert sent.headers["authorization"] == f"Bearer {CANARY_KEY}"


async def _check_answer(driver: Driver, model: mm.Model, messages: Any, prefix: str, expected: dict[str, Any]) -> None:
    if expected["stream"]:
        events, response = await driver.events(model, messages)
        reasoning_events = "".join(e.text for e in events if isinstance(e, mm.ReasoningDelta))
        assert reasoning_events == (expected["reasoning"] or "")
    else:
        response = await driver.chat(model, messages)
    assert response.provider == prefix
    assert response.text == expected["text"]
    assert response.reasoning == expected["reasoning"]
    assert response.finish_reason == expected["finish_reason"]
    assert response.model == expected["model"]
    assert response.content_filtered is expected["content_filtered"]
    if expected["usage"] is None:
        assert response.usage is None
    else:
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (
            expected["usage"]["input_tokens"],
            expected["usage"]["output_tokens"],
        )
        assert not response.usage.estimated
        if expected.get("reasoning_tokens") is not None:
            assert response.usage.reasoning_tokens == expected["reasoning_tokens"]
    got = [(c.id, c.name, c.arguments) for c in response.tool_calls]
    assert got == [(c["id"], c["name"], c["arguments"]) for c in expected["tool_calls"]]


async def _check_error(
    driver: Driver, model: mm.Model, messages: Any, stem: str, prefix: str, expected: dict[str, Any]
) -> None:
    error = expected["error"]
    call = driver.events(model, messages) if expected["stream"] else driver.chat(model, messages)
    with pytest.raises(mm.APIStatusError) as info:
        await call
    raised = info.value
    assert type(raised) is ERROR_TYPES[error["status"]]
    assert raised.status == error["status"]
    assert raised.provider == prefix
    assert raised.code == (None if error["code"] is None else str(error["code"]))
    assert raised.error_type == error["type"]
    assert raised.retryable is (error["status"] == 429)
    # The service's own message first, then what it said beside it.
    assert raised.message.startswith(f"{error['message']} {ERROR_DETAILS[stem]}")
    assert len(raised.message) < 1100
