"""Async: many questions at once on one model, plus an async stream.

Shows `await model.achat(...)` run concurrently with `asyncio.gather` (the model's connection
pool is shared), `async with model.astream(...)`, and closing the model with `async with`.

    export OPENAI_API_KEY=sk-...
    python examples/async_chat.py
"""

from __future__ import annotations

import asyncio

import modelmix as mm

QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Italy?",
    "What is the capital of Japan?",
]


async def main() -> None:
    async with mm.model("openai:gpt-4o-mini") as model:
        answers = await asyncio.gather(*(model.achat(question, max_tokens=30) for question in QUESTIONS))
        for question, answer in zip(QUESTIONS, answers, strict=True):
            print(f"{question} -> {answer.text}")

        async with model.astream("Write a haiku about the sea.") as stream:
            async for delta in stream.text_deltas():
                print(delta, end="", flush=True)
        print()
        print("stream finished:", stream.response.finish_reason)


if __name__ == "__main__":
    asyncio.run(main())
