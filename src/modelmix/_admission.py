"""Admission to an async connection pool: past its size, calls wait in line here, not in httpcore.

httpcore's pool does work proportional to the number of waiting requests each time a connection
frees up, and gives each waiter only the pool timeout: with a few hundred calls more than the pool
holds, every release walks the whole queue and the calls at its end time out without ever being
sent. A call therefore takes a slot here first — one slot per connection the pool may open, handed
on in arrival order at O(1) — and reaches the pool only when a connection is free for it. Waiting
for a slot is local back-pressure: it is bounded by the attempt's deadline (never by the pool
timeout) and ends, when that passes, as a pool timeout, which retries and circuit breakers do not
count against the endpoint.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx

from ._call_deadline import attempt_end

__all__ = ["AdmittingTransport", "ConnectionSlots", "admit", "take_slot"]


class ConnectionSlots:
    """`limit` slots handed out first come, first served (one event loop)."""

    __slots__ = ("_free", "_waiters", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def take_free(self) -> bool:
        """Take a slot if one is free and nobody waits for one (True), without waiting."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self, within: float) -> None:
        """Take a slot, waiting at most `within` seconds (``inf``: as long as it takes)."""
        if self.take_free():
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            with anyio.fail_after(None if math.isinf(within) else max(within, 0.0)):
                await turn.wait()
        except BaseException:
            if turn.is_set():
                self.release()  # the slot was handed over as we gave up: pass it on
            else:
                self._waiters.remove(turn)
            raise

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the slot goes straight to the next in line
        else:
            self._free += 1


async def take_slot(slots: ConnectionSlots, request: Callable[[], httpx.Request]) -> None:
    """Take one of `slots` within the attempt's deadline, else fail as httpx's `PoolTimeout` does
    (`request` builds the request it names, only when it is needed)."""
    end = attempt_end()
    try:
        await slots.acquire(math.inf if end is None else end - time.monotonic())
    except TimeoutError:
        raise httpx.PoolTimeout(
            f"no connection slot freed up before the deadline ({slots.limit} calls in flight, "
            f"{slots.waiting} more waiting): too many concurrent calls for the pool; raise "
            "max_connections or send fewer at once",
            request=request(),
        ) from None


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its slot back when it is closed (once)."""

    __slots__ = ("_release", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, slots: ConnectionSlots) -> None:
        self._stream = stream
        self._release: ConnectionSlots | None = slots

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            slots, self._release = self._release, None
            if slots is not None:
                slots.release()


class AdmittingTransport(httpx.AsyncBaseTransport):
    """`inner`, entered through `ConnectionSlots` sized like its pool."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self.inner = inner
        self.slots = ConnectionSlots(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await take_slot(self.slots, lambda: request)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.slots.release()
            raise
        if response.is_closed:
            # A body read in full already (a mock transport's prepared response): no connection is held.
            self.slots.release()
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, self.slots)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def admit(client: httpx.AsyncClient, limit: int) -> httpx.AsyncClient:
    """`client` with its default transport entered through connection slots (a client modelmix
    made; proxied mounts keep httpcore's own queue)."""
    transport: Any = client._transport
    client._transport = AdmittingTransport(transport, limit)
    return client
