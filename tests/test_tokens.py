"""Model catalog: context windows, prices and the cost filled into responses."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply
from modelmix.tokens import PRICES_AS_OF, ModelInfo, cost_of, model_info, register_model_info, with_cost


def test_known_model_has_window_and_prices() -> None:
    info = model_info("gpt-4o-mini")
    assert info is not None
    assert info.context_window == 128_000
    assert info.input_per_mtok == Decimal("0.15")
    assert PRICES_AS_OF.count("-") == 2


@pytest.mark.parametrize("name", ["gpt-4o-mini-2024-07-18", "openai:gpt-4o-mini", "GPT-4o-Mini"])
def test_lookup_accepts_snapshots_prefixes_and_case(name: str) -> None:
    assert model_info(name) == model_info("gpt-4o-mini")


def test_unknown_model_has_no_info_and_no_cost() -> None:
    assert model_info("my-private-llama") is None
    assert model_info(None) is None
    assert cost_of("my-private-llama", mm.Usage(input_tokens=10, output_tokens=10)) is None
    assert cost_of("gpt-4o-mini", None) is None


def test_cost_counts_cached_input_at_the_cached_price() -> None:
    usage = mm.Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000)
    assert cost_of("gpt-4o", usage) == Decimal("0.6") * Decimal("2.50") + Decimal("0.4") * Decimal("1.25") + 10


def test_cached_tokens_never_exceed_input_and_missing_cached_price_uses_input_price() -> None:
    info = ModelInfo(context_window=None, input_per_mtok=1.0, output_per_mtok=2.0)
    usage = mm.Usage(input_tokens=100, output_tokens=0, cached_tokens=500)
    assert info.cost(usage) == Decimal("0.0001")
    assert ModelInfo(input_per_mtok=1.0).cost(usage) is None


def test_registered_info_overrides_and_prices_deployments() -> None:
    register_model_info("my-deployment", ModelInfo(context_window=4096, input_per_mtok=0.0, output_per_mtok=0.0))
    assert model_info("azure:my-deployment") == ModelInfo(4096, 0.0, 0.0)
    response = mm.ChatResponse(
        message=mm.assistant("hi"), provider="azure", model=None, usage=mm.Usage(input_tokens=5, output_tokens=5)
    )
    assert with_cost(response, "my-deployment").cost == 0


def test_with_cost_keeps_an_existing_cost_and_ignores_missing_usage() -> None:
    priced = mm.ChatResponse(message=mm.assistant("x"), provider="p", cost=Decimal("1.5"), usage=mm.Usage())
    assert with_cost(priced, "gpt-4o").cost == Decimal("1.5")
    unpriced = mm.ChatResponse(message=mm.assistant("x"), provider="p")
    assert with_cost(unpriced, "gpt-4o").cost is None


def test_model_context_window_comes_from_the_catalog_unless_given() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    client = httpx.Client(transport=transport)
    assert mm.model("openai:gpt-4.1", api_key="sk-test", http_client=client).context_window == 1_047_576
    assert mm.model("openai:gpt-4.1", api_key="sk-test", http_client=client, context_window=1000).context_window == 1000
    assert mm.model("openai:unknown-model", api_key="sk-test", http_client=client).context_window is None


def test_responses_carry_cost_on_chat_and_stream() -> None:
    reply = FakeReply(text="four words of answer", input_tokens=1000, output_tokens=500)
    with FakeOpenAIServer(reply=reply, model="gpt-4o-mini-2024-07-18") as server:
        with mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test") as model:
            expected = Decimal("0.00045")  # (1000 x 0.15 + 500 x 0.60) / 1e6, exactly
            assert model.chat("hi").cost == expected
            with model.stream("hi") as stream:
                stream.until_done()
            assert stream.response.cost == expected
