"""A chain member's own deadline ends that member, not the chain."""

from __future__ import annotations

import pytest

import modelmix as mm
from modelmix.testing import FakeClock, FakeReply, FunctionModel


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _chain(clock: FakeClock) -> tuple[mm.Model, FunctionModel]:
    slow = FunctionModel(FakeReply("late", delay=5.0), name="slow", clock=clock)
    healthy = FunctionModel("Hello", name="healthy", clock=clock)
    member = mm.retrying(slow, deadline=0.3, min_attempt_time=0.01, clock=clock)
    return mm.fallback(member, healthy, deadline=60, min_attempt_time=0.01, clock=clock), healthy


def test_a_member_out_of_its_own_deadline_hands_over_to_the_next_sync() -> None:
    chain, healthy = _chain(FakeClock())
    response = chain.chat("hi")
    assert response.text == "Hello"
    assert len(healthy.calls) == 1
    assert [a.model for a in response.attempts][-1] == "healthy"


async def test_a_member_out_of_its_own_deadline_hands_over_to_the_next_async() -> None:
    chain, healthy = _chain(FakeClock())
    response = await chain.achat("hi")
    assert response.text == "Hello"
    assert len(healthy.calls) == 1


def test_the_chains_own_deadline_still_ends_the_chain() -> None:
    clock = FakeClock()
    slow = FunctionModel(FakeReply("late", delay=5.0), name="slow", clock=clock)
    healthy = FunctionModel("Hello", name="healthy", clock=clock)
    chain = mm.fallback(
        mm.retrying(slow, deadline=30, min_attempt_time=0.01, clock=clock),
        healthy,
        deadline=0.3,
        min_attempt_time=0.1,  # what the slow member leaves of the chain's 0.3 s is less than this
        clock=clock,
    )
    with pytest.raises(mm.DeadlineExceededError):
        chain.chat("hi")
    assert healthy.calls == []
