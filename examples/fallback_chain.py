"""Retries and a fallback chain, offline.

Two fake OpenAI-compatible endpoints (httpx.MockTransport): the primary answers 503 every time,
the backup answers normally. The chain retries the primary twice (full-jitter backoff), falls back
to the backup, and the response lists every attempt. Then both fail, and the error is one
`AllModelsFailedError` that is also an ExceptionGroup.

    python examples/fallback_chain.py
"""

from __future__ import annotations

import asyncio
import json

import httpx

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

CLIENTS: list[httpx.AsyncClient] = []  # clients we pass in are ours to close


def fake_endpoint(name: str, *, status: int) -> mm.Model:
    """An OpenAI-compatible model whose server always answers `status`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(status, json={"error": {"message": f"{name} is overloaded", "type": "server_error"}})
        answer = {"role": "assistant", "content": f"Hello from {name}"}
        return httpx.Response(200, json={"model": name, "choices": [{"message": answer, "finish_reason": "stop"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    CLIENTS.append(client)
    base = OpenAIModel(name, api_key="sk-example", base_url=f"https://{name}.example/v1", async_http_client=client)
    # backoff_base=0.05 keeps this demo quick; the default is 0.5 s.
    return mm.retrying(base, policy=mm.RetryPolicy(backoff_base=0.05))


async def main() -> None:
    primary = fake_endpoint("primary", status=503)
    backup = fake_endpoint("backup", status=200)
    chain = mm.fallback(primary, backup, deadline=10)

    response = await chain.achat("Say hello")
    print(response.text)
    for attempt in response.attempts:
        outcome = attempt.error or "answered"
        print(f"  {attempt.model:8} try {attempt.retry_no + 1}: {outcome} (status {attempt.status})")

    down = mm.fallback(fake_endpoint("east", status=500), fake_endpoint("west", status=502), deadline=10)
    try:
        await down.achat("Say hello")
    except mm.AllModelsFailedError as group:
        print(f"{group}: {[type(e).__name__ for e in group.exceptions]}, {len(group.attempts)} attempts")
        server_errors, _ = group.split(mm.ServerError)  # what `except* mm.ServerError` matches
        statuses = (
            [e.status for e in server_errors.exceptions if isinstance(e, mm.ServerError)] if server_errors else []
        )
        print("server errors:", json.dumps(statuses))

    for client in CLIENTS:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
