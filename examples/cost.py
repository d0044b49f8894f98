"""Token usage and cost of a few calls, and how to price a model of your own.

Run with OPENAI_API_KEY set (or OPENAI_BASE_URL pointing at any OpenAI-compatible server).
"""

from __future__ import annotations

import modelmix as mm


def main() -> None:
    # Price a deployment the built-in table can't know (names of Azure deployments are yours).
    mm.register_model_info("house-model", mm.ModelInfo(context_window=32_000, input_per_mtok=0.5, output_per_mtok=1.5))

    total = 0.0
    with mm.model("openai:gpt-4o-mini") as model:
        for question in ("What is a token?", "Why do output tokens cost more?"):
            response = model.chat(question, max_tokens=100)
            usage = response.usage
            assert usage is not None, "the server reported no usage"
            cost = response.cost or 0.0
            total += cost
            print(f"{question!r}: {usage.input_tokens} in, {usage.output_tokens} out, ${cost:.6f}")
    print(f"total: ${total:.6f}")
    print("house-model window:", mm.model_info("house-model").context_window)  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
