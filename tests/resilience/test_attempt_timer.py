"""`AttemptTimer`: an async attempt's time limit as one loop timer (asyncio, Python 3.11+).

Real loop time: what must expire waits for a tenth of a second, what must not for thirty, so a
loaded machine that runs the loop late cannot turn one into the other.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytest

import modelmix as mm
from modelmix.resilience._read_timer import AttemptTimer, _cancelling, _uncancel
from modelmix.testing import FunctionModel

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is Python 3.11+")


def _current() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


async def test_the_timer_ends_a_wait_and_takes_its_cancellation_back() -> None:
    timer = AttemptTimer(0.1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(30)
    assert timer.took_back()
    timer.close()
    assert _cancelling(_current()) == 0
    await asyncio.sleep(0)  # nothing left pending: the task runs on


async def test_someone_elses_cancellation_is_not_taken() -> None:
    timer = AttemptTimer(30)
    _current().cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(30)
    assert not timer.took_back()
    timer.close()
    assert _uncancel(_current()) == 0  # the caller's request still stood; this test takes it back


async def test_a_cancellation_at_the_same_moment_as_the_timer_still_stands() -> None:
    timer = AttemptTimer(0.1)
    handle = timer._handle
    assert handle is not None
    asyncio.get_running_loop().call_at(handle.when(), _current().cancel)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(30)
    assert not timer.took_back()
    assert _uncancel(_current()) == 0


async def test_an_attempt_that_ends_in_time_leaves_nothing_behind() -> None:
    timer = AttemptTimer(30)
    await asyncio.sleep(0)
    timer.close()
    assert timer._handle is None
    assert not timer.fired
    assert _cancelling(_current()) == 0


def _hangs() -> FunctionModel:
    async def answer(messages: Sequence[mm.Message], settings: mm.Settings) -> str:
        await asyncio.sleep(30)
        return "too late"  # pragma: no cover - the deadline comes first

    return FunctionModel(answer)


async def test_a_hanging_attempt_ends_at_the_deadline_as_a_deadline_error() -> None:
    model = mm.retrying(_hangs(), deadline=0.2, max_retries=0, min_attempt_time=0.01)
    started = time.monotonic()
    with pytest.raises(mm.DeadlineExceededError):
        await model.achat("hi")
    assert time.monotonic() - started < 10  # stopped, not waited out (the model sleeps 30 s)
    assert _cancelling(_current()) == 0
    await asyncio.sleep(0)


async def test_the_callers_cancellation_of_an_attempt_stays_a_cancellation() -> None:
    model = mm.retrying(_hangs(), deadline=60, max_retries=0)
    call = asyncio.create_task(model.achat("hi"))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert call.cancelled()
