"""Running a coroutine to completion from sync code, whether or not this thread runs an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

__all__ = ["run_sync"]

T = TypeVar("T")


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_sync(awaitable: Awaitable[T], *, thread_name: str) -> T:
    """`awaitable`'s result, on an event loop of its own: in a worker thread named `thread_name`
    when this thread already runs a loop (as in a notebook), where a nested loop is not allowed."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(_awaited, awaitable)
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        return pool.submit(anyio.run, _awaited, awaitable).result()
