"""Conformance: every recorded structured-output answer in ../shared/cassettes (JSON schema and
JSON mode, OpenAI, Groq and Ollama's /v1) replayed with ``output=`` gives the recorded JSON as a
validated object; a recorded tool call comes back as the tool call, with no output yet."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import create_model

import modelmix as mm

from .._support import chat_cases, replay_transport, require_shared
from ._helpers import Driver
from .conftest import MakeModel

BACKENDS = ("openai", "openai-compatible", "ollama-openai", "azure-openai", "vllm")


def _structured_cases() -> list[Any]:
    found = [
        case
        for backend in BACKENDS
        for case in chat_cases(backend)
        if case.values[2].get("response_format") in ("json_schema", "json_object")
    ]
    return found or [pytest.param(None, None, None, id="shared-cassettes-absent")]


def _output_type(value: dict[str, Any]) -> Any:
    """A pydantic model with the recorded answer's fields, typed by their recorded values."""
    fields: dict[str, Any] = {key: (type(item), ...) for key, item in value.items()}
    return create_model("Recorded", **fields)


def _base_url(interaction: dict[str, Any]) -> str:
    url = httpx.URL(interaction["request"]["url"])
    return str(url.copy_with(path=url.path.removesuffix("/chat/completions"), query=None))


@pytest.mark.parametrize(("cassette", "interaction", "expected"), _structured_cases())
async def test_recorded_structured_answers_validate(
    driver: Driver,
    make_model: MakeModel,
    cassette: dict[str, Any] | None,
    interaction: dict[str, Any] | None,
    expected: dict[str, Any] | None,
) -> None:
    require_shared("openai")
    assert cassette is not None
    assert interaction is not None
    assert expected is not None
    body = interaction["request"]["json"]
    model = make_model(replay_transport(interaction), name=body["model"], base_url=_base_url(interaction))
    recorded_tools = body.get("tools") or []
    parsed = expected["parsed_json"]
    target = _output_type(parsed) if parsed is not None else _output_type({"city": "", "country": ""})
    settings: dict[str, Any] = {"output": target}
    if recorded_tools:
        settings["tools"] = recorded_tools

    response = await driver.chat(model, body["messages"], **settings)

    assert response.refusal == expected["refusal"]
    if parsed is not None:
        assert response.output is not None
        assert response.output.model_dump() == parsed
    else:
        # The recording answered with a call of the caller's own tool: no output yet.
        assert expected["tool_calls"]
        assert response.output is None
        assert [call.name for call in response.tool_calls] == [call["name"] for call in expected["tool_calls"]]


def test_the_recordings_hold_structured_answers() -> None:
    require_shared("openai")
    cases = _structured_cases()
    assert len(cases) >= 5
    assert {case.values[2]["response_format"] for case in cases} == {"json_schema", "json_object"}


async def test_a_recorded_structured_answer_that_does_not_fit_is_refused(driver: Driver, make_model: MakeModel) -> None:
    require_shared("openai")
    case = next(
        case
        for case in _structured_cases()
        if case.values[2]["parsed_json"] and not case.values[1]["request"]["json"].get("tools")
    )
    interaction, expected = case.values[1], case.values[2]
    body = interaction["request"]["json"]
    fields: dict[str, Any] = {key: (list[int], ...) for key in expected["parsed_json"]}
    wrong = create_model("Wrong", **fields)
    model = make_model(replay_transport(interaction), name=body["model"], base_url=_base_url(interaction))
    with pytest.raises(mm.OutputValidationError) as caught:
        await driver.chat(model, body["messages"], output=wrong)
    assert caught.value.raw_text == expected["text"]
    assert caught.value.enforced is True
