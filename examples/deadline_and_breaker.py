"""One deadline, a circuit breaker and a hedge, offline.

- A model whose server is down (connection refused) sits behind a circuit breaker: after ten
  failures in a row the breaker opens and later calls skip it at once.
- A slow model (2 s to answer) in a chain with `deadline=0.5`: the call ends with
  `DeadlineExceededError` after half a second, not two.
- A hedge: when the slow primary has not answered after 0.1 s, a backup request races it and the
  loser is cancelled.

    python examples/deadline_and_breaker.py
"""

from __future__ import annotations

import time

import anyio
import httpx

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

CLIENTS: list[httpx.AsyncClient] = []


def fake(name: str, *, delay: float = 0.0, down: bool = False) -> OpenAIModel:
    async def handler(request: httpx.Request) -> httpx.Response:
        if down:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        await anyio.sleep(delay)
        answer = {"role": "assistant", "content": f"Hello from {name}"}
        return httpx.Response(200, json={"model": name, "choices": [{"message": answer, "finish_reason": "stop"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    CLIENTS.append(client)
    return OpenAIModel(name, api_key="sk-example", base_url=f"https://{name}.example/v1", async_http_client=client)


async def main() -> None:
    # 1. A circuit breaker around a dead endpoint (no retries, to show the breaker alone).
    guarded = mm.circuit_breaker(fake("dead", down=True))
    for call in range(12):
        try:
            await guarded.achat("hi")
        except (mm.TransportError, mm.CircuitOpenError) as exc:
            assert guarded.breaker is not None
            state = guarded.breaker.state(time.monotonic()).value
            print(f"call {call + 1}: {type(exc).__name__:16} breaker is {state}")

    # 2. One deadline for the whole chain (min_attempt_time is lowered to fit a short demo).
    chain = mm.fallback(fake("slow", delay=2.0), fake("also-slow", delay=2.0), deadline=0.5, min_attempt_time=0.1)
    started = time.monotonic()
    try:
        await chain.achat("hi")
    except mm.DeadlineExceededError as exc:
        print(f"deadline: {exc} after {time.monotonic() - started:.2f} s")

    # 3. A hedge against a slow primary.
    hedged = mm.hedge(fake("slow-primary", delay=2.0), fake("quick-backup"), after=0.1)
    started = time.monotonic()
    response = await hedged.achat("hi")
    print(f"hedge: {response.text!r} in {time.monotonic() - started:.2f} s")

    for client in CLIENTS:
        await client.aclose()


if __name__ == "__main__":
    anyio.run(main)
