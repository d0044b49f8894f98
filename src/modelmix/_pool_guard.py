"""Survive httpcore's pool jam on cancellation.

httpcore 1.0.x (what httpx 0.28 uses) can wedge its async connection pool: when a task is cancelled
after the pool created a connection for its request but before that connection started
connecting, the request leaves the queue while the connection stays in the pool in its initial
state — not idle, not available, not closed — forever. With ``max_connections`` such orphans the
pool never hands out a connection again and every later call ends in ``PoolTimeout``.

An orphan can only appear when a send fails, so after every failed async send (cancellation
included) the driver sweeps the pool: connections that never started connecting and that no
queued request owns are dropped, and waiting requests are reassigned. The sweep touches httpcore
internals, so it checks they look as expected and otherwise does nothing.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx

__all__ = ["heal_async_pool"]


def _orphans(pool: Any) -> list[Any]:
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return []
    owned = {id(getattr(request, "connection", None)) for request in requests}
    found = []
    for connection in connections:
        never_started = (
            getattr(connection, "_connection", object()) is None
            and getattr(connection, "_connect_failed", True) is False
        )
        if never_started and id(connection) not in owned:
            found.append(connection)
    return found


async def heal_async_pool(client: httpx.AsyncClient) -> int:
    """Drop orphaned connections from `client`'s pool; returns how many were dropped."""
    transport = getattr(client, "_transport", None)
    transport = getattr(transport, "inner", transport)  # under modelmix's admission (_admission)
    pool = getattr(transport, "_pool", None)
    if pool is None:
        return 0
    orphans = _orphans(pool)
    if not orphans:
        return 0
    assign = getattr(pool, "_assign_requests_to_connections", None)
    close = getattr(pool, "_close_connections", None)
    lock = getattr(pool, "_optional_thread_lock", None)
    if assign is None or close is None or lock is None:  # pragma: no cover - a different httpcore
        return 0
    with lock:
        for orphan in orphans:
            pool._connections.remove(orphan)
        # Hand the freed slots to requests waiting in the queue.
        closing = assign()
    with anyio.CancelScope(shield=True):
        await close([*closing, *orphans])
    return len(orphans)
