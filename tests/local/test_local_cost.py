"""What the embedded model's answers cost: 0, unless a price is registered under any name the
model answers to — the name it was asked for (``local:smollm2``), its canonical name or a bare one."""

from __future__ import annotations

from decimal import Decimal

import pytest

import modelmix as mm
from modelmix.tokens import _catalog

from .conftest import needs_llama

pytestmark = needs_llama


@pytest.fixture
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})


def _at_one_and_two(usage: mm.Usage | None) -> Decimal:
    assert usage is not None
    return Decimal(usage.input_tokens * 1 + usage.output_tokens * 2).scaleb(-6)


@pytest.mark.parametrize("registered", ["local:smollm2", "smollm2", "local:smollm2-135m-instruct", "local:embedded"])
def test_a_price_registered_under_a_name_the_model_answers_to_is_used(registered: str, no_overrides: None) -> None:
    mm.register_model_info(registered, mm.ModelInfo(input_per_mtok="1", output_per_mtok="2"))
    name = registered if registered.startswith("local:") else f"local:{registered}"
    model = mm.model(name)
    response = model.chat("Say hi.", max_tokens=3, temperature=0)
    assert response.cost == _at_one_and_two(response.usage)
    with model.stream("Say hi.", max_tokens=3, temperature=0) as stream:
        streamed = stream.until_done()
    assert streamed.cost == _at_one_and_two(streamed.usage)


async def test_async_answers_are_priced_too(no_overrides: None) -> None:
    mm.register_model_info("local:smollm2", mm.ModelInfo(input_per_mtok="1", output_per_mtok="2"))
    model = mm.model("local:smollm2")
    response = await model.achat("Say hi.", max_tokens=3, temperature=0)
    assert response.cost == _at_one_and_two(response.usage)
    async with model.astream("Say hi.", max_tokens=3, temperature=0) as stream:
        streamed = await stream.until_done()
    assert streamed.cost == _at_one_and_two(streamed.usage)


def test_unpriced_answers_cost_an_exact_zero(no_overrides: None) -> None:
    response = mm.model("local").chat("Say hi.", max_tokens=3, temperature=0)
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert isinstance(response.cost, Decimal)
    assert response.cost == 0
    assert response.total_cost == 0
