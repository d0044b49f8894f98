"""One `reasoning=` setting for every backend, and one place to read what the model thought.

A reasoning model gets the level in its backend's own words (OpenAI's `reasoning_effort` here); a
model that cannot take one refuses it before anything is sent, and a fallback chain moves on to a
member that can. Run it with OPENAI_API_KEY set (or OPENAI_BASE_URL pointing at any
OpenAI-compatible server):

    python examples/reasoning.py
"""

from __future__ import annotations

import modelmix as mm


def main() -> None:
    thinker = mm.model("openai:o4-mini")
    plain = mm.model("openai:gpt-4o-mini")
    print(f"{thinker.name} takes reasoning as {thinker.profile.reasoning}; {plain.name}: {plain.profile.reasoning}")

    answer = thinker.chat("What is 17 * 23? Answer with the number only.", reasoning="low")
    print("answer:", answer.text)
    if answer.reasoning:
        print("reasoning:", answer.reasoning)
    if answer.usage is not None and answer.usage.reasoning_tokens is not None:
        print("reasoning tokens:", answer.usage.reasoning_tokens)

    try:
        plain.chat("Hi", reasoning="high")
    except mm.UnsupportedCapabilityError as exc:
        print(f"refused before sending: {exc.capability} ({exc.param}=) on {exc.model}")

    chain = mm.fallback(plain, thinker)
    answered = chain.chat("Hi", reasoning="high")
    print("the chain answered with", answered.attempts[-1].model)


if __name__ == "__main__":
    main()
