"""`ReadTimer`: the idle timeout and the deadline of a committed async stream with one loop timer.

Real loop time (the timer is the event loop's): each test leaves a margin of at least half a
second or a factor of two between what must and what must not expire, so a loaded machine that
runs the loop late cannot turn one into the other.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from modelmix.resilience._read_timer import Expiry, ReadTimer, read_timer_available

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is Python 3.11+")


class Expired(Exception):
    def __init__(self, why: Expiry) -> None:
        super().__init__(why)
        self.why = why


async def items(*delays: float) -> AsyncIterator[int]:
    for index, delay in enumerate(delays):
        await asyncio.sleep(delay)
        yield index


async def never() -> AsyncIterator[int]:
    await asyncio.Event().wait()
    yield 0  # pragma: no cover - never reached


def test_it_is_used_only_on_asyncio() -> None:
    assert read_timer_available() is False  # no loop running here

    async def inside() -> bool:
        return read_timer_available()

    assert asyncio.run(inside()) is True


async def test_a_reader_waiting_the_whole_idle_timeout_gets_the_stream_error_and_no_cancellation() -> None:
    timer = ReadTimer(0.1, 60.0, Expired)
    with pytest.raises(Expired) as caught:
        await timer.next(never())
    timer.close()
    assert caught.value.why == "idle"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # type: ignore[attr-defined]  # 3.11+, like this module
    await asyncio.sleep(0.01)  # the task is not still being cancelled


async def test_time_in_the_callers_hands_is_not_idle_time() -> None:
    timer = ReadTimer(0.1, 60.0, Expired)
    source = items(0, 0, 0)
    received = []
    for _ in range(3):
        received.append(await timer.next(source))
        await asyncio.sleep(0.3)  # the caller is slow; the server was not
    timer.close()
    assert received == [0, 1, 2]


async def test_each_wait_gets_the_whole_idle_timeout() -> None:
    timer = ReadTimer(1.0, 60.0, Expired)
    source = items(0.4, 0.4, 0.4)  # each wait well inside the limit, together longer
    assert [await timer.next(source) for _ in range(3)] == [0, 1, 2]
    timer.close()


async def test_the_deadline_ends_a_stream_that_keeps_flowing() -> None:
    timer = ReadTimer(5.0, 0.15, Expired)
    source = items(*[0.01] * 1000)

    async def read_all() -> None:
        while True:
            await timer.next(source)

    with pytest.raises(Expired) as caught:
        await read_all()
    timer.close()
    assert caught.value.why == "deadline"


async def test_a_passed_deadline_is_noticed_before_waiting_again() -> None:
    timer = ReadTimer(5.0, 0.05, Expired)
    source = items(0, 0)
    await timer.next(source)
    await asyncio.sleep(0.1)
    with pytest.raises(Expired, match="deadline"):
        await timer.next(source)
    timer.close()


async def test_a_cancellation_someone_else_requested_still_propagates() -> None:
    timer = ReadTimer(0.0, 60.0, Expired)  # expires at the first check
    task = asyncio.current_task()
    assert task is not None

    def cancel_from_outside() -> None:
        task.cancel()  # the caller's own cancellation, at the same moment
        timer._check()  # and ours

    asyncio.get_running_loop().call_soon(cancel_from_outside)
    with pytest.raises(asyncio.CancelledError):
        await timer.next(never())
    timer.close()
    assert task.uncancel() == 0  # type: ignore[attr-defined]  # only the outside request was left


async def test_close_stops_the_timer() -> None:
    timer = ReadTimer(0.05, 60.0, Expired)
    assert await timer.next(items(0)) == 0
    timer.close()
    await asyncio.sleep(0.15)  # a live timer would have cancelled nothing (not waiting) — and must be gone
    assert timer._handle is None
