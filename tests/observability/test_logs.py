"""Structured logs: one line per attempt and one per call, the same stable keys every time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import modelmix as mm
from modelmix.observability import CallLogger, log_calls, remove_hooks
from modelmix.testing import FakeClock, FakeReply, FunctionModel

ATTEMPT_KEYS = [
    "event", "call", "operation", "provider", "model", "server", "position", "retry", "outcome", "error_type",
    "status", "phase", "duration_s", "ttft_s", "input_tokens", "output_tokens", "cost_usd", "request_id",
    "response_model", "finish_reason",
]  # fmt: skip
CALL_KEYS = [
    "event", "call", "operation", "provider", "model", "streaming", "outcome", "error_type", "attempts",
    "answered_by", "position", "duration_s", "ttft_s", "input_tokens", "output_tokens", "cost_usd", "finish_reasons",
]  # fmt: skip


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="modelmix.calls")
    hooks = log_calls()
    assert isinstance(hooks, CallLogger)
    yield caplog
    remove_hooks(hooks)


def _fields(records: list[logging.LogRecord]) -> list[dict[str, object]]:
    return [r.modelmix for r in records if r.name == "modelmix.calls"]  # type: ignore[attr-defined]


def test_a_fallback_call_logs_each_attempt_then_the_call(logged: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    flaky = FunctionModel(FakeReply("busy", status=503), name="flaky", clock=clock)
    chain = mm.fallback(flaky, FunctionModel("hi", name="good", clock=clock), clock=clock)
    chain.chat("x")
    records = logged.records
    fields = _fields(records)
    assert [f["event"] for f in fields] == ["attempt", "attempt", "call"]
    assert [list(f) for f in fields] == [ATTEMPT_KEYS, ATTEMPT_KEYS, CALL_KEYS]
    failed, answered, call = fields
    assert failed["outcome"] == "error"
    assert failed["error_type"] == "ServerError"
    assert failed["status"] == 503
    assert answered["outcome"] == "ok"
    assert answered["position"] == 1
    assert call["answered_by"] == "function:good"
    assert call["attempts"] == 2
    assert failed["call"] == answered["call"] == call["call"]
    levels = [r.levelno for r in records if r.name == "modelmix.calls"]
    assert levels == [logging.INFO, logging.DEBUG, logging.INFO]
    message = next(r.getMessage() for r in records if r.name == "modelmix.calls" and r.levelno == logging.INFO)
    assert message.startswith("event=attempt call=")
    assert "error_type=ServerError status=503" in message


def test_nothing_is_formatted_when_the_level_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="modelmix.calls")
    hooks = log_calls()
    try:
        FunctionModel("hi").chat("x")
    finally:
        remove_hooks(hooks)
    assert _fields(caplog.records) == []
