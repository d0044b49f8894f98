"""Cloud vendors sell at their own prices. The built-in catalog holds OpenAI's and Azure's list
prices: a model of the same name on Mistral's or Together's API costs something else, so it gets
the entry's limits but no cost, unless its prices are registered or the server reports the cost
(OpenRouter's ``usage.cost``, checked against real recordings)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.tokens import ModelInfo, _catalog, model_info, register_model_info

from .._support import SHARED_CASSETTES, load_cassette, replay_transport

USAGE = mm.Usage(input_tokens=1_000_000, output_tokens=0)


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})


def _model(spec: str, transport: httpx.MockTransport, **options: Any) -> mm.Model:
    return mm.model(
        spec,
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **options,
    )


@pytest.mark.parametrize("spec", ["mistral:mistral-small-2503", "together:gpt-4o", "groq:Llama-3.3-70B-Instruct"])
def test_a_cloud_vendor_is_not_priced_by_another_vendors_list(spec: str) -> None:
    info = model_info(spec)
    bare = model_info(spec.partition(":")[2])
    assert info is not None
    assert bare is not None
    assert bare.input_per_mtok is not None  # the catalog does price the name, for OpenAI or Azure
    assert (info.input_per_mtok, info.output_per_mtok) == (None, None)
    assert info.cost(USAGE) is None
    assert (info.context_window, info.max_output_tokens) == (bare.context_window, bare.max_output_tokens)


def test_the_vendors_whose_list_it_is_keep_their_prices() -> None:
    assert model_info("azure:mistral-small-2503") == model_info("mistral-small-2503")
    openai = model_info("openai:gpt-4o")
    assert openai is not None
    assert openai.input_per_mtok == Decimal("2.50")


def test_a_call_to_a_cloud_vendor_has_no_cost_until_its_prices_are_registered() -> None:
    body = {
        "model": "mistral-small-2503",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 1000},
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    model = _model("mistral:mistral-small-2503", transport)
    assert model.chat("hi").cost is None
    register_model_info("mistral:mistral-small-2503", ModelInfo(131072, "0.1", "0.3"))
    assert model.chat("hi").cost == Decimal("0.0004")


@pytest.mark.parametrize(
    ("stem", "stream"),
    [
        ("pydantic-ai__test_openrouter_thinking_high_emits_effort_high", False),
        ("pydantic-ai__test_openrouter_streaming_reasoning", True),
    ],
)
def test_openrouter_reports_what_the_call_cost(stem: str, stream: bool) -> None:
    path = SHARED_CASSETTES / "openai-compatible" / f"{stem}.json"
    if not path.is_file():
        pytest.skip(f"../shared/cassettes/openai-compatible/{stem}.json is absent")
    interaction = load_cassette(path)["interactions"][0]
    body = interaction["request"]["json"]
    model = _model(f"openrouter:{body['model']}", replay_transport(interaction))
    if stream:
        with model.stream(body["messages"]) as s:
            list(s)
        response = s.response
    else:
        response = model.chat(body["messages"])
    recorded = interaction["response"]["body"]
    lines = [line[5:] for line in recorded.splitlines() if line.startswith("data:") and "usage" in line]
    usage = json.loads(lines[-1] if stream else recorded, parse_float=Decimal)["usage"]
    assert usage["cost"] > 0
    assert response.cost == usage["cost"]
