"""Cost arithmetic on usages real servers recorded (``../shared/cassettes``), cached, cache-write
and reasoning tokens included. Where the server billed the call itself (OpenRouter sends a
``cost``), modelmix's exact arithmetic must give the same figure to the last digit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

import modelmix as mm
from modelmix.providers._openai_wire import parse_usage
from modelmix.tokens import ModelInfo, _catalog, cost_of, register_model_info

from .._support import SHARED_CASSETTES, load_cassette


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})


def _documents(body: str) -> list[Any]:
    """The JSON documents of a body: the body itself, or each ``data:`` line of an SSE stream."""
    if body.lstrip().startswith("{"):
        return [json.loads(body, parse_float=Decimal)]
    lines = (line[5:].strip() for line in body.splitlines() if line.startswith("data:"))
    return [json.loads(line, parse_float=Decimal) for line in lines if line and line != "[DONE]"]


def _recorded(relative: str, index: int) -> tuple[str, dict[str, Any]]:
    """(the model the server named, the last usage object) of one recorded answer."""
    path = SHARED_CASSETTES / relative
    if not path.is_file():
        pytest.skip(f"../shared/cassettes/{relative} is absent")
    model, usage = None, None
    for document in _documents(load_cassette(path)["interactions"][index]["response"]["body"]):
        holder = document.get("response") if isinstance(document.get("response"), dict) else document
        if isinstance(holder.get("usage"), dict):
            usage = holder["usage"]
        model = holder.get("model") or model
    assert model is not None, f"{relative}#{index} names no model"
    assert usage is not None, f"{relative}#{index} has no usage"
    return model, usage


CATALOG_CASES = [
    # file, interaction, expected usage (in, cached, out, reasoning), cost at the catalog's list price
    ("openai/crewai__test_o3_mini_reasoning_effort_high.json", 0, (13, 0, 81, 64), "0.0003707"),
    ("openai-responses/dd-trace-py__response_custom_tool_call.json", 0, (159, 0, 275, 256), "0.00294875"),
    ("openai-responses/openllmetry__test_responses_reasoning_dict_issue.json", 0, (12, 0, 1014, 832), "0.0004062"),
    ("openai-responses/openllmetry__test_responses_reasoning_dict_issue.json", 1, (12, 0, 841, 576), "0.0003370"),
    ("openai/elastic-otel__test_chat.json", 0, (22, 0, 3, 0), "0.0000051"),
    ("azure-openai/pydantic-ai__test_azure_provider_call.json", 0, (14, 0, 9, 0), "0.000125"),
]


@pytest.mark.parametrize(("relative", "index", "counts", "expected"), CATALOG_CASES)
def test_recorded_usage_priced_from_the_catalog(
    relative: str, index: int, counts: tuple[int, int, int, int], expected: str
) -> None:
    model, raw = _recorded(relative, index)
    usage = parse_usage(raw)
    assert usage is not None
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens, usage.reasoning_tokens) == counts
    # Reasoning tokens are part of the output tokens: billed once, at the output price.
    assert cost_of(model, usage) == Decimal(expected)


def test_the_server_named_snapshots_resolve_to_their_catalog_entries() -> None:
    names = {_recorded(relative, index)[0] for relative, index, _, _ in CATALOG_CASES}
    assert names == {"o3-mini-2025-01-31", "gpt-5-2025-08-07", "gpt-5-nano-2025-08-07", "gpt-4o-mini-2024-07-18",
                     "gpt-4o-2024-11-20"}  # fmt: skip


SERVER_BILLED = [
    # OpenRouter's own bill: cache writes (4012 of 4020 prompt tokens) at 1.25x the input price,
    # then cache reads (4012 of 4020) at 0.1x, both parts of input_tokens.
    ("open-responses/pydantic-ai__test_openrouter_responses_prompt_cache_e2e.json", 0, ("5", "0.5", "6.25", "30")),
    ("open-responses/pydantic-ai__test_openrouter_responses_prompt_cache_e2e.json", 1, ("5", "0.5", "6.25", "30")),
    # Claude Sonnet 4.5 at Anthropic's $3 / $15: 48 of the 53 output tokens are reasoning.
    ("openai-compatible/pydantic-ai__test_openrouter_thinking_high_emits_effort_high.json", 0, ("3", None, None, "15")),
    ("openai-compatible/pydantic-ai__test_openrouter_streaming_reasoning.json", 0, ("3", None, None, "15")),
]


@pytest.mark.parametrize(("relative", "index", "prices"), SERVER_BILLED)
def test_exact_cost_matches_what_the_server_billed(
    relative: str, index: int, prices: tuple[str, str | None, str | None, str]
) -> None:
    model, raw = _recorded(relative, index)
    billed = raw["cost"]
    assert isinstance(billed, Decimal)
    input_price, cached_price, write_price, output_price = prices
    register_model_info(
        model,
        ModelInfo(
            input_per_mtok=input_price,
            output_per_mtok=output_price,
            cached_input_per_mtok=cached_price,
            cache_write_per_mtok=write_price,
        ),
    )
    assert cost_of(model, parse_usage(raw)) == billed


def test_cache_write_tokens_are_read_from_the_prompt_details() -> None:
    _, raw = _recorded("open-responses/pydantic-ai__test_openrouter_responses_prompt_cache_e2e.json", 0)
    usage = parse_usage(raw)
    assert usage is not None
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cached_tokens) == (4020, 4012, 0)


def test_a_model_without_a_price_costs_none_never_zero() -> None:
    # Groq's gpt-oss-120b, 256 of 336 prompt tokens cached: the catalog has no price for it.
    model, raw = _recorded("openai-compatible/pydantic-ai__test_tool_use_failed_error.json", 2)
    usage = parse_usage(raw)
    assert usage is not None
    assert usage.cached_tokens == 256
    assert cost_of(f"openai-compatible:{model}", usage) is None


def test_a_recorded_answer_replayed_through_the_public_api_carries_its_exact_cost() -> None:
    import httpx

    path = SHARED_CASSETTES / "openai/crewai__test_o3_mini_reasoning_effort_high.json"
    if not path.is_file():
        pytest.skip("../shared/cassettes/openai is absent")
    recorded = load_cassette(path)["interactions"][0]["response"]
    transport = httpx.MockTransport(lambda request: httpx.Response(recorded["status"], text=recorded["body"]))
    with mm.model("openai:o3-mini", api_key="sk-test", http_client=httpx.Client(transport=transport)) as model:
        response = model.chat("What is the capital of France?")
    assert response.cost == Decimal("0.0003707")
    assert response.total_cost == response.cost
