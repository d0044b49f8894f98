"""The catalog shipped as data: its validity, lookups, overrides (run time, the user's file, an
Azure deployment's own prices) and exact Decimal cost."""

from __future__ import annotations

import decimal
import json
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.tokens import (
    CAPABILITIES,
    PRICES_AS_OF,
    ModelInfo,
    _catalog,
    catalog_entries,
    cost_of,
    info_for_model,
    load_catalog,
    model_info,
    register_model_info,
    worst_case_cost,
)


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})


def _raw_file() -> dict[str, Any]:
    text = resources.files("modelmix.tokens").joinpath("_catalog.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# ----------------------------------------------------------------------------- the data file


def test_every_entry_has_a_date_a_source_and_prices_that_parse() -> None:
    raw = _raw_file()["models"]
    assert len(raw) == len(catalog_entries()) >= 50
    for entry in raw:
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", entry["checked"]), entry["name"]
        assert entry["source"].startswith("https://"), entry["name"]
        for field in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok"):
            value = entry.get(field)
            assert value is None or isinstance(value, str), (entry["name"], field)  # never a binary float
            if value is not None:
                price = Decimal(value)
                assert price.is_finite(), (entry["name"], field)
                assert price >= 0, (entry["name"], field)
    for info in catalog_entries():
        assert info.name
        assert info.family
        assert info.checked
        assert info.source
        assert info.capabilities is None or info.capabilities <= CAPABILITIES
        assert info.context_window is None or info.context_window > 0
        # A cache discount is a discount.
        if info.cached_input_per_mtok is not None and info.input_per_mtok is not None:
            assert info.cached_input_per_mtok <= info.input_per_mtok, info.name


def test_prices_as_of_is_the_newest_date_in_the_file() -> None:
    assert max(info.checked or "" for info in catalog_entries()) == PRICES_AS_OF


def test_the_file_covers_openai_azure_families_and_local_backends() -> None:
    names = {info.name for info in catalog_entries()}
    for expected in ("gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4o", "gpt-4o-mini", "o1", "o3", "o3-mini", "o4-mini",
                     "gpt-4", "gpt-3.5-turbo", "Phi-4", "Phi-4-mini-instruct", "Llama-3.3-70B-Instruct",
                     "Llama-4-Maverick-17B-128E-Instruct-FP8", "Mistral-Large-2411", "mistral-small-2503",
                     "mistral-medium-2505", "DeepSeek-R1", "DeepSeek-V3-0324", "MAI-DS-R1",
                     "Cohere-command-r-plus-08-2024", "grok-3"):  # fmt: skip
        assert expected in names
    for provider in ("local", "ollama", "llamacpp", "vllm", "lmstudio"):
        info = model_info(f"{provider}:whatever-model")
        assert info is not None
        assert info.input_per_mtok == 0
        assert info.output_per_mtok == 0


def test_an_unknown_price_is_none_in_the_file_and_gives_no_cost() -> None:
    info = model_info("azure:MAI-DS-R1")
    assert info is not None
    assert info.input_per_mtok is None
    assert not info.priced
    assert cost_of("azure:MAI-DS-R1", mm.Usage(input_tokens=10, output_tokens=10)) is None


def test_aliases_and_dated_snapshots() -> None:
    assert model_info("gpt-4o-2024-08-06") is model_info("gpt-4o")
    assert model_info("azure:llama-3.1-405b-instruct") is model_info("Meta-Llama-3.1-405B-Instruct")
    # A snapshot with a price of its own is not priced as its alias.
    may = model_info("gpt-4o-2024-05-13")
    assert may is not None
    assert may.input_per_mtok == Decimal("5.00")
    # An Ollama tag is never read as a provider prefix.
    assert model_info("ollama:llama3.2:latest") == model_info("ollama:x")


# ------------------------------------------------------------------------------- exactness


def test_cost_is_exact_decimal_and_ignores_the_callers_decimal_context() -> None:
    usage = mm.Usage(input_tokens=1_234_567, output_tokens=7_654_321, cached_tokens=1_000_001)
    with decimal.localcontext() as context:
        context.prec = 3  # a caller's coarse context must not round a bill
        context.traps[decimal.Inexact] = True
        cost = cost_of("gpt-4o-mini", usage)
    # 234,566 x 0.15 + 1,000,001 x 0.075 + 7,654,321 x 0.60 = 4,702,777.575 per million
    assert cost == Decimal("4.702777575")


def test_small_costs_add_up_without_float_drift() -> None:
    one = cost_of("gpt-5-nano", mm.Usage(input_tokens=1, output_tokens=0))
    assert one == Decimal("0.00000005")
    responses = [mm.ChatResponse(message=mm.assistant("x"), provider="p", usage=mm.Usage(), cost=one)] * 10
    assert mm.ChatResponse(message=mm.assistant("x"), provider="p", attempts=[]).total_cost is None
    from modelmix._response import summed_cost

    assert summed_cost(responses) == Decimal("0.0000005")  # 0.1 + 0.2 style drift is impossible


def test_cached_and_cache_write_tokens_are_parts_of_the_input() -> None:
    info = ModelInfo(input_per_mtok="4", output_per_mtok="8", cached_input_per_mtok="1", cache_write_per_mtok="5")
    usage = mm.Usage(input_tokens=100, output_tokens=10, cached_tokens=30, cache_write_tokens=50, reasoning_tokens=9)
    assert info.cost(usage) == Decimal(20 * 4 + 30 * 1 + 50 * 5 + 10 * 8) / 1_000_000
    # Without their own prices, cached and written tokens are billed as input.
    assert ModelInfo(input_per_mtok="4", output_per_mtok="8").cost(usage) == Decimal(100 * 4 + 10 * 8) / 1_000_000


def test_worst_case_cost_assumes_no_cache_discount() -> None:
    info = model_info("gpt-4.1-mini")
    assert worst_case_cost(info, 1000, 500) == Decimal("0.0012")  # 1000 x 0.40 + 500 x 1.60
    assert worst_case_cost(None, 1000, 500) is None
    assert worst_case_cost(ModelInfo(input_per_mtok="1"), 1, 1) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_per_mtok", "-1"), ("output_per_mtok", "NaN"), ("input_per_mtok", "cheap"), ("input_per_mtok", True)],
)
def test_a_bad_price_is_a_configuration_error(field: str, value: Any) -> None:
    with pytest.raises(mm.ConfigurationError, match=field):
        ModelInfo(**{field: value})


def test_bad_capabilities_and_dates_are_configuration_errors() -> None:
    with pytest.raises(mm.ConfigurationError, match="capabilities"):
        ModelInfo(capabilities=["telepathy"])
    with pytest.raises(mm.ConfigurationError, match="checked"):
        ModelInfo(checked="last tuesday")
    assert ModelInfo(input_per_mtok=0.15).input_per_mtok == Decimal("0.15")  # a float as written


# ------------------------------------------------------------------------------- overrides


def test_a_registered_override_wins_over_the_list_price() -> None:
    register_model_info("gpt-4o-mini", ModelInfo(input_per_mtok="0.10", output_per_mtok="0.40"))
    assert cost_of("openai:gpt-4o-mini-2024-07-18", mm.Usage(input_tokens=10, output_tokens=10)) == Decimal("0.000005")


def test_load_catalog_reads_the_users_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "models": [
                    {"name": "azure:support-bot", "aliases": ["support-bot-eu"], "input_per_mtok": "0.12",
                     "output_per_mtok": "0.48", "context_window": 128000, "note": "our negotiated rate"},
                ],
            }
        )
    )  # fmt: skip
    assert load_catalog(path) == ["azure:support-bot"]
    info = model_info("azure:support-bot")
    assert info is not None
    assert info.input_per_mtok == Decimal("0.12")
    assert info.context_window == 128000
    assert model_info("azure:support-bot-eu") is info


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not valid JSON"),
        ('{"models": []}', "format"),
        ('{"format": 1, "models": [{"name": "x", "input_per_mtok": 0.1}]}', "as a string"),
        ('{"format": 1, "models": [{"name": "x", "input_per_mtok": "-2"}]}', "input_per_mtok"),
        ('{"format": 1, "models": [{"name": "x", "price": "1"}]}', "unknown fields"),
    ],
)
def test_a_bad_user_file_is_a_configuration_error_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(mm.ConfigurationError, match=problem) as caught:
        load_catalog(path)
    assert "bad.json" in str(caught.value)
    assert _catalog._overrides == {}


# ------------------------------------------------------------------------- Azure deployments


def _azure(name: str, server_model: str, **options: Any) -> mm.Model:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": server_model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 400}},
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    return mm.model(
        f"azure:{name}",
        endpoint="https://example.openai.azure.com/openai/v1/",
        api_key="test-key",
        http_client=httpx.Client(transport=transport),
        max_retries=0,
        **options,
    )


GPT_4O = Decimal("0.003")  # 600 x 2.50 + 400 x 1.25 + 100 x 10.00, per million
GPT_4O_MINI = Decimal("0.00018")  # 600 x 0.15 + 400 x 0.075 + 100 x 0.60


def test_a_deployment_is_priced_by_the_model_the_server_reports() -> None:
    assert _azure("prod-chat", "gpt-4o-2024-11-20").chat("hi").cost == GPT_4O


def test_catalog_model_names_the_entry_explicitly() -> None:
    model = _azure("prod-chat", "some-name-the-server-invents", catalog_model="gpt-4o-mini")
    assert model.chat("hi").cost == GPT_4O_MINI
    assert model.context_window == 128_000
    info = info_for_model(model)
    assert info is not None
    assert info.name == "gpt-4o-mini"


def test_a_deployments_negotiated_prices_win_over_list_prices() -> None:
    register_model_info("azure:prod-chat", ModelInfo(input_per_mtok="1", output_per_mtok="2"))
    model = _azure("prod-chat", "gpt-4o-2024-11-20", catalog_model="gpt-4o")
    assert model.chat("hi").cost == Decimal("0.0012")  # 1000 x 1 + 100 x 2: no cached price → input price
    with model.stream("hi") as stream:
        stream.until_done()
    assert stream.response.cost == Decimal("0.0012")


def test_an_unknown_deployment_costs_none() -> None:
    assert _azure("prod-chat", "my-finetune-7").chat("hi").cost is None


def test_catalog_model_must_be_a_name() -> None:
    with pytest.raises(mm.ConfigurationError, match="catalog_model"):
        _azure("prod-chat", "x", catalog_model="  ")


def test_a_price_registered_after_a_lookup_is_seen_at_once() -> None:
    # Look-ups are remembered (pricing runs on every response); registering must not leave a stale answer.
    assert mm.model_info("openai:my-tuned-model") is None
    model = mm.model("openai:my-tuned-model", api_key="sk-test")
    pricing = model.unwrap().pricing  # type: ignore[attr-defined]
    assert pricing.info() is None
    mm.register_model_info("my-tuned-model", mm.ModelInfo(input_per_mtok="1", output_per_mtok="2"))
    found = mm.model_info("openai:my-tuned-model")
    assert found is not None
    assert found.output_per_mtok == Decimal("2")
    assert pricing.info() is found
