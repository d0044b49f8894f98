"""Admission to the async pool: past its size, calls wait in line (first come, first served) for a
free connection, bounded by the attempt's deadline and never by the pool timeout; a wait that
runs out is a pool timeout, which the circuit breaker does not count against the endpoint."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import httpx
import pytest

import modelmix as mm
from modelmix._admission import AdmittingTransport, ConnectionSlots
from modelmix._call_deadline import attempt_ends_in
from modelmix.testing import FakeOpenAIServer

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")


async def test_slots_are_handed_on_in_arrival_order() -> None:
    slots = ConnectionSlots(1)
    await slots.acquire(float("inf"))
    order: list[int] = []

    async def wait(number: int) -> None:
        await slots.acquire(float("inf"))
        order.append(number)
        slots.release()

    async with anyio.create_task_group() as group:
        for number in range(5):
            group.start_soon(wait, number)
            await anyio.lowlevel.checkpoint()  # each one queues before the next
        assert slots.waiting == 5
        slots.release()
    assert order == [0, 1, 2, 3, 4]
    assert slots.waiting == 0


async def test_a_wait_that_runs_out_leaves_the_line_and_loses_nothing() -> None:
    slots = ConnectionSlots(1)
    await slots.acquire(float("inf"))
    with pytest.raises(TimeoutError):
        await slots.acquire(0.01)
    assert slots.waiting == 0
    slots.release()
    await slots.acquire(0)  # the one slot is still there
    slots.release()


async def test_a_waiter_cancelled_as_its_turn_comes_loses_no_slot() -> None:
    slots = ConnectionSlots(1)
    await slots.acquire(float("inf"))
    got: list[str] = []
    scopes: dict[str, anyio.CancelScope] = {}

    async def waiter(name: str) -> None:
        with anyio.CancelScope() as scope:
            scopes[name] = scope
            await slots.acquire(float("inf"))
            got.append(name)
            slots.release()

    async with anyio.create_task_group() as group:
        group.start_soon(waiter, "first")
        await anyio.lowlevel.checkpoint()
        group.start_soon(waiter, "second")
        await anyio.lowlevel.checkpoint()
        assert slots.waiting == 2
        slots.release()  # the slot goes to "first"...
        scopes["first"].cancel()  # ...which is cancelled before it runs again
    # Whether the cancellation or the slot reached "first" first, "second" got its turn and the
    # one slot is free again: nothing was lost or handed out twice.
    assert got[-1] == "second"
    assert slots.waiting == 0
    await slots.acquire(0)
    with pytest.raises(TimeoutError):
        await slots.acquire(0)


def _gated_transport(gate: anyio.Event, in_flight: list[int], peak: list[int]) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await gate.wait()
        in_flight[0] -= 1
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


async def test_the_transport_lets_in_as_many_calls_as_the_pool_holds() -> None:
    gate = anyio.Event()
    in_flight, peak = [0], [0]
    transport = AdmittingTransport(_gated_transport(gate, in_flight, peak), limit=3)
    async with httpx.AsyncClient(transport=transport) as client:

        async def call() -> None:
            response = await client.get("http://test/")
            assert response.json() == {"ok": True}

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(call)
            await anyio.sleep(0.05)
            assert peak[0] == 3
            assert transport.slots.waiting == 7
            gate.set()
    assert transport.slots.waiting == 0
    await transport.slots.acquire(0)  # every slot came back when its response closed


async def test_a_wait_past_the_attempts_deadline_is_a_pool_timeout() -> None:
    gate = anyio.Event()
    transport = AdmittingTransport(_gated_transport(gate, [0], [0]), limit=1)
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as group:
        group.start_soon(client.get, "http://test/")
        await anyio.sleep(0.01)
        with attempt_ends_in(0.05), pytest.raises(httpx.PoolTimeout, match="no connection slot freed up"):
            await client.get("http://test/")
        gate.set()


async def test_many_more_calls_than_connections_all_succeed_through_the_default_model() -> None:
    with FakeOpenAIServer(reply="ok") as server:
        model = mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test")
        results: list[str] = []

        async def call() -> None:
            results.append((await model.achat("hi")).text)

        async with model, anyio.create_task_group() as group:
            for _ in range(400):  # the default pool holds 256
                group.start_soon(call)
    assert results == ["ok"] * 400


async def test_many_more_streams_than_connections_all_finish_and_give_their_slots_back() -> None:
    with FakeOpenAIServer(reply="one two three four", chunks=4) as server:
        model = mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test")
        texts: list[str] = []

        async def read() -> None:
            async with model.astream("hi") as stream:
                texts.append("".join([delta async for delta in stream.text_deltas()]))

        async with model, anyio.create_task_group() as group:
            for _ in range(300):
                group.start_soon(read)
            client = model.unwrap().backend.async_client()  # type: ignore[attr-defined]
    assert texts == ["one two three four"] * 300
    slots = client._transport.slots
    assert slots.waiting == 0
    for _ in range(slots.limit):  # every slot is free again
        await slots.acquire(0)
