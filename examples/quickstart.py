"""Quickstart: one model, one question, and what comes back.

Shows `mm.model("provider:model")` configured from the environment (OPENAI_API_KEY, and
OPENAI_BASE_URL if you use a proxy or a compatible server), a plain-string call, a conversation
with a system message and per-call settings, and the fields of the typed `ChatResponse`.

    export OPENAI_API_KEY=sk-...
    python examples/quickstart.py
"""

from __future__ import annotations

import modelmix as mm


def main() -> None:
    with mm.model("openai:gpt-4o-mini", settings={"temperature": 0.2}) as model:
        response = model.chat("Name three primary colours.")
        print("answer:", response.text)

        conversation = [
            mm.system("You answer in one short sentence."),
            mm.user("What is the capital of France?"),
        ]
        response = model.chat(conversation, max_tokens=50)
        print("answer:", response.text)
        print("finish reason:", response.finish_reason)
        print("answered by:", response.provider, response.model)
        if response.usage is not None:
            print(f"tokens: {response.usage.input_tokens} in, {response.usage.output_tokens} out")
        print(f"request id: {response.request_id}, latency: {response.latency * 1000:.0f} ms")


if __name__ == "__main__":
    main()
