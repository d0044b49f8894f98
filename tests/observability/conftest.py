"""Fixtures for the observability suite: a hook that records what it is told."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelmix.observability import AttemptInfo, CallInfo, Hooks, RetryWait, add_hooks, remove_hooks
from modelmix.resilience import registry


class Recorder(Hooks):
    """Every event as (event, model, details...) and the calls it saw finish."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.calls: list[CallInfo] = []
        self.waits: list[RetryWait] = []

    def call_started(self, call: CallInfo) -> None:
        self.events.append(("call_started", call.model))

    def request_sent(self, attempt: AttemptInfo) -> None:
        self.events.append(("request_sent", attempt.model, attempt.position, attempt.retry_no))

    def first_chunk(self, attempt: AttemptInfo) -> None:
        self.events.append(("first_chunk", attempt.model))

    def attempt_finished(self, attempt: AttemptInfo) -> None:
        self.events.append(("attempt_finished", attempt.model, attempt.outcome, attempt.error_type))

    def retry_wait(self, wait: RetryWait) -> None:
        self.events.append(("retry_wait", wait.model, wait.position, wait.retry_no, wait.error_type))
        self.waits.append(wait)

    def call_finished(self, call: CallInfo) -> None:
        self.events.append(("call_finished", call.model, call.outcome, call.error_type))
        self.calls.append(call)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    hooks = Recorder()
    add_hooks(hooks)
    try:
        yield hooks
    finally:
        remove_hooks(hooks)


@pytest.fixture(autouse=True)
def _fresh_endpoints() -> Iterator[None]:
    registry.clear()
    yield
    registry.clear()


@pytest.fixture(params=["asyncio", "trio"])
def both_backends(request: pytest.FixtureRequest) -> str:
    return str(request.param)
