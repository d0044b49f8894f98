"""Token usage and exact cost of a few calls, and how to price a model of your own.

Run with OPENAI_API_KEY set (or OPENAI_BASE_URL pointing at any OpenAI-compatible server).
"""

from __future__ import annotations

from decimal import Decimal

import modelmix as mm


def main() -> None:
    # Price a deployment the built-in catalog can't know (names of Azure deployments are yours).
    # Prices are USD per million tokens; strings keep them exact.
    mm.register_model_info(
        "house-model", mm.ModelInfo(context_window=32_000, input_per_mtok="0.50", output_per_mtok="1.50")
    )

    total = Decimal(0)
    with mm.model("openai:gpt-4o-mini") as model:
        for question in ("What is a token?", "Why do output tokens cost more?"):
            response = model.chat(question, max_tokens=100)
            usage = response.usage
            assert usage is not None, "the server reported no usage"
            # total_cost adds retries and fallbacks that consumed tokens; None: a price is unknown.
            cost = response.total_cost
            if cost is None:
                print(f"{question!r}: {usage.input_tokens} in, {usage.output_tokens} out, price unknown")
                continue
            total += cost
            print(f"{question!r}: {usage.input_tokens} in, {usage.output_tokens} out, ${cost}")
    print(f"total: ${total}")
    info = mm.model_info("house-model")
    assert info is not None
    print("house-model window:", info.context_window)


if __name__ == "__main__":
    main()
