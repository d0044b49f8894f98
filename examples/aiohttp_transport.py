"""Async calls over aiohttp: `transport="aiohttp"` for services with many calls in flight.

Starts modelmix's in-process fake OpenAI server, sends 200 concurrent `achat` calls and one
stream through the aiohttp transport, then one sync call (sync calls always use httpx). Needs the
extra: ``pip install 'modelmix[aiohttp]'``; without it the example says so and exits.

    python examples/aiohttp_transport.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import time

import modelmix as mm
from modelmix.testing import FakeOpenAIServer

CALLS = 200


async def main(base_url: str) -> None:
    async with mm.model("openai:gpt-4o-mini", base_url=base_url, api_key="sk-test", transport="aiohttp") as model:
        started = time.perf_counter()
        answers = await asyncio.gather(*(model.achat(f"Question {n}") for n in range(CALLS)))
        elapsed = time.perf_counter() - started
        print(f"{len(answers)} concurrent calls over aiohttp in {elapsed:.2f} s: {answers[0].text!r}")

        async with model.astream("Write a haiku about the sea.") as stream:
            text = "".join([delta async for delta in stream.text_deltas()])
        print(f"stream over aiohttp: {text!r} ({stream.response.finish_reason})")

        # The same model serves sync code too, over httpx.
        print(f"sync call over httpx: {model.chat('One more?').text!r}")


if __name__ == "__main__":
    if importlib.util.find_spec("aiohttp") is None:
        print("skipped: the aiohttp transport needs pip install 'modelmix[aiohttp]'")
    else:
        with FakeOpenAIServer(reply="Hello from the fake server.") as server:
            asyncio.run(main(server.base_url))
