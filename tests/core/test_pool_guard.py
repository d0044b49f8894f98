"""modelmix survives httpcore's pool jam on cancellation (an orphaned connection holding a slot)."""

from __future__ import annotations

from typing import Any

import anyio
import httpcore
import httpx

import modelmix as mm
from modelmix._pool_guard import heal_async_pool
from modelmix.testing import FakeOpenAIServer


def _plant_orphan(client: httpx.AsyncClient, url: str) -> Any:
    """Leave the pool as httpcore does when a request is cancelled right after its connection was
    created: a never-started connection that no request owns."""
    pool: Any = client._transport._pool  # type: ignore[attr-defined]
    orphan = httpcore.AsyncHTTPConnection(origin=httpcore.URL(url).origin)
    pool._connections.append(orphan)
    return pool


async def test_an_orphaned_connection_wedges_a_bare_pool_and_the_guard_frees_it() -> None:
    with FakeOpenAIServer(reply="ok") as server:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
            pool = _plant_orphan(client, server.url)
            # The one slot is held by the orphan: a plain httpx request can only wait for it.
            with anyio.move_on_after(0.3) as scope:
                await client.get(f"{server.base_url}/models")
            assert scope.cancelled_caught
            assert len(pool._connections) == 1
            assert await heal_async_pool(client) == 1
            assert pool._connections == []
            response = await client.get(f"{server.base_url}/models")
            assert response.status_code == 200


async def test_heal_leaves_healthy_pools_alone() -> None:
    with FakeOpenAIServer(reply="ok") as server:
        async with httpx.AsyncClient() as client:
            await client.get(f"{server.base_url}/models")
            assert await heal_async_pool(client) == 0
            assert len(client._transport._pool._connections) == 1  # type: ignore[attr-defined]


async def test_a_cancellation_storm_leaves_the_model_pool_usable() -> None:
    def slow(request: dict[str, Any]) -> str:
        return "Hello"

    with FakeOpenAIServer(reply=slow) as server:
        for _ in range(5):
            client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1))
            # The bare HTTP model: the guard lives in the driver (retry wrappers add deadline rules).
            model = mm.model(
                "openai:a", api_key="sk-test", base_url=server.base_url, async_http_client=client, max_retries=0
            )
            async with anyio.create_task_group() as group:
                for i in range(30):

                    async def one(delay: float = 0.001 * (i % 7), target: mm.Model = model) -> None:
                        with anyio.move_on_after(delay):
                            await target.achat("hi")

                    group.start_soon(one)
            pool: Any = client._transport._pool  # type: ignore[attr-defined]
            assert not pool._requests
            assert all(c.is_idle() or c.is_closed() for c in pool._connections), repr(pool._connections)
            with anyio.fail_after(2):
                assert (await model.achat("hi")).text == "Hello"
            await client.aclose()
