"""A budget over a fallback chain, a cascade that escalates only when needed, and the pre-flight
context check — offline: the models are `FunctionModel` fakes priced like real ones.

Run it as it is: no key, no server, no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import modelmix as mm
from modelmix.testing import FunctionModel

# Two house models with list prices (USD per million tokens), as the catalog would give them.
mm.register_model_info("house-small", mm.ModelInfo(context_window=2_000, input_per_mtok=0.10, output_per_mtok=0.40))
mm.register_model_info("house-large", mm.ModelInfo(context_window=128_000, input_per_mtok=2.50, output_per_mtok=10.0))


def priced(name: str, answer: str) -> FunctionModel:
    """A fake that answers `answer` and reports realistic usage (so costs are real numbers)."""

    def reply(messages: Sequence[mm.Message], settings: Any) -> mm.ChatResponse:
        prompt = sum(len(m.text.split()) + 4 for m in messages) + 3
        return mm.ChatResponse(
            message=mm.assistant(answer),
            finish_reason="stop",
            provider="function",
            model=name,
            usage=mm.Usage(input_tokens=prompt, output_tokens=len(answer.split()) + 1),
        )

    return FunctionModel(reply, name=name, context_window=mm.model_info(name).context_window)  # type: ignore[union-attr]


def cascade_demo() -> None:
    small = priced("house-small", "I'm not sure, maybe Lyon?")
    large = priced("house-large", "Paris.")
    cascade = mm.cascade(small, large, accept=lambda r: "not sure" not in r.text)
    response = cascade.chat("What is the capital of France?", max_tokens=50)
    print(f"cascade: {response.text!r} from tier {response.tier} ({response.attempts[-1].model})")
    print(f"  tried: {[(a.model, a.error) for a in response.attempts]}")
    print(f"  cost ${response.cost:.8f}, saved ${response.cost_saved:.8f} against asking house-large")

    easy = mm.cascade(priced("house-small", "4"), large, accept=lambda r: r.text.strip().isdigit())
    kept = easy.chat("What is 2 + 2?", max_tokens=5)
    print(f"cascade: {kept.text!r} from tier {kept.tier}, saved ${kept.cost_saved:.8f}")


async def budget_demo() -> None:
    chain = mm.budget(mm.fallback(priced("house-large", "Large."), priced("house-small", "Small.")), max_usd="0.003")
    answered: dict[str, int] = {}
    for n in range(40):
        # Each call reserves its worst case (prompt + 200 answer tokens at list price) first: once
        # house-large's no longer fits what is left, the chain falls through to house-small.
        response = await chain.achat(f"Question number {n}, please answer briefly.", max_tokens=200)
        answered[response.text] = answered.get(response.text, 0) + 1
    print(f"budget: answered {answered}")
    print(f"  spent ${chain.spent:.6f} of ${chain.max_usd}, ${chain.left:.6f} left")
    try:
        await chain.achat("Write a whole novel.", max_tokens=100_000)
    except mm.BudgetExceededError as error:
        print(f"  refused: needs up to ${error.needed:.6f}, ${error.left:.6f} left")

    # Concurrent calls share the budget and never overspend it together.
    burst = mm.budget(priced("house-small", "Small."), max_usd="0.0005")
    results = await asyncio.gather(
        *(burst.achat(f"Question {n}?", max_tokens=20) for n in range(100)), return_exceptions=True
    )
    refused = sum(isinstance(r, mm.BudgetExceededError) for r in results)
    print(f"burst: {100 - refused} answered, {refused} refused, spent ${burst.spent:.6f} of ${burst.max_usd}")
    assert burst.spent <= burst.max_usd
    assert burst.reserved == Decimal(0)


def preflight_demo() -> None:
    # The check runs before anything is sent, so this member never needs its (unreachable) server.
    mini = mm.model(
        "openai:gpt-4o-mini", context_window=2_000, api_key="offline-demo", base_url="http://127.0.0.1:9/v1"
    )
    chain = mm.fallback(mini, priced("house-large", "A summary."))
    long_report = "The quarterly numbers look fine. " * 400  # ~2,400 tokens: more than mini's window
    response = chain.chat("Summarise: " + long_report, max_tokens=200)
    print(f"pre-flight: {response.text!r}; tried {[(a.model, a.error) for a in response.attempts]}")


if __name__ == "__main__":
    cascade_demo()
    asyncio.run(budget_demo())
    preflight_demo()
