"""Content capture and redaction: with capture off, a canary key and canary content never reach a
span, event, metric or log line — through retries, fallbacks, errors and streams; with capture
on, the messages are recorded in the conventions' JSON shape (and the key still is not)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import modelmix as mm
from modelmix.observability import CallInfo, log_calls, remove_hooks
from modelmix.providers.openai import OpenAIModel
from modelmix.testing import FakeClock
from tests.resilience.faultserver import Fault, FaultServer

from ._otel_support import attrs, loads, make_telemetry

CANARY_KEY = "sk-CANARY-4f3e2d1c0b9a8776"
CANARY_PROMPT = "please summarise the zebra quartz canary memo"
CANARY_SYSTEM = "you are the zebra quartz canary system"
CANARY_ANSWER = "the zebra quartz canary answer"
ECHO = {"error": {"message": f"bad key {CANARY_KEY} for prompt {CANARY_PROMPT}", "type": "server_error"}}


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def models(server: FaultServer) -> Iterator[Callable[[str], OpenAIModel]]:
    server.reset()
    made: list[OpenAIModel] = []

    def make(label: str) -> OpenAIModel:
        model = OpenAIModel(label, api_key=CANARY_KEY, base_url=server.url(label))
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


def _every_kind_of_call(server: FaultServer, make: Callable[[str], OpenAIModel]) -> None:
    """Retries, a fallback, an auth failure, a failed call, a stream cut after content."""
    server.script("a", Fault.error(503, ECHO), Fault.error(429, ECHO))
    server.script("b", Fault.ok(CANARY_ANSWER))
    server.script("c", Fault.error(401, ECHO))
    server.script("d", Fault("reset_after_chunks", chunks=2, text=CANARY_ANSWER))
    clock = FakeClock()
    messages = [mm.system(CANARY_SYSTEM), mm.user(CANARY_PROMPT)]
    chain = mm.fallback(mm.retrying(make("a"), max_retries=1, clock=clock), make("b"), clock=clock)
    assert chain.chat(messages).text == CANARY_ANSWER
    server.script("a", Fault.error(503, ECHO))
    with chain.stream(messages) as stream:
        assert stream.until_done().text == CANARY_ANSWER
    with pytest.raises(mm.AuthenticationError):
        mm.retrying(make("c"), clock=clock).chat(messages)
    with pytest.raises(mm.StreamInterruptedError), mm.retrying(make("d"), clock=clock).stream(messages) as stream:
        stream.until_done()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger="modelmix")
    hooks = log_calls()
    yield caplog
    remove_hooks(hooks)


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {getattr(r, 'modelmix', '')} {r.exc_text or ''}" for r in caplog.records)


def test_capture_off_exports_no_key_and_no_content(
    server: FaultServer, models: Callable[[str], OpenAIModel], logs: pytest.LogCaptureFixture
) -> None:
    for otel in make_telemetry(capture_content=False):
        _every_kind_of_call(server, models)
        exported = otel.everything()
        assert len(otel.roots()) == 4
        assert "exception" in exported  # errors were exported, redacted
        for canary in (CANARY_KEY, CANARY_KEY[-8:], CANARY_PROMPT, CANARY_SYSTEM, CANARY_ANSWER):
            assert canary not in exported
            assert canary not in _log_text(logs)
        assert "gen_ai.input.messages" not in exported
    assert "event=call" in _log_text(logs)
    assert "event=attempt" in _log_text(logs)


def test_capture_on_records_messages_in_the_conventions_shape_but_never_the_key(
    server: FaultServer, models: Callable[[str], OpenAIModel]
) -> None:
    for otel in make_telemetry(capture_content=True):
        _every_kind_of_call(server, models)
        exported = otel.everything()
        assert CANARY_KEY not in exported
        assert CANARY_KEY[-8:] not in exported
        first = attrs(otel.roots()[0])
        assert loads(first["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": CANARY_PROMPT}]}
        ]
        assert loads(first["gen_ai.system_instructions"]) == [{"type": "text", "content": CANARY_SYSTEM}]
        assert loads(first["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": CANARY_ANSWER}], "finish_reason": "stop"}
        ]
        for child in otel.children(otel.roots()[0]):
            assert "gen_ai.input.messages" not in attrs(child)


def test_the_standard_environment_variable_turns_capture_on(
    server: FaultServer, models: Callable[[str], OpenAIModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script("b", Fault.ok("fine"))
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    for otel in make_telemetry():
        models("b").chat(CANARY_PROMPT)
        assert CANARY_PROMPT in attrs(otel.roots()[0])["gen_ai.input.messages"]
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    for otel in make_telemetry():
        models("b").chat(CANARY_PROMPT)
        assert CANARY_PROMPT not in otel.everything()


def test_a_content_hook_stores_content_elsewhere_and_the_span_keeps_a_reference(
    server: FaultServer, models: Callable[[str], OpenAIModel]
) -> None:
    server.script("b", Fault.ok(CANARY_ANSWER))
    stored: dict[str, Any] = {}

    def upload(call: CallInfo, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> str:
        stored["blob-1"] = (call.model, inputs, outputs)
        return "s3://bucket/blob-1"

    for otel in make_telemetry(capture_content=False, content_hook=upload):
        models("b").chat(CANARY_PROMPT)
        root = attrs(otel.roots()[0])
        assert root["modelmix.content.reference"] == "s3://bucket/blob-1"
        assert CANARY_PROMPT not in otel.everything()
        assert CANARY_ANSWER not in otel.everything()
    model, inputs, outputs = stored["blob-1"]
    assert model == "b"
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": CANARY_PROMPT}]}]
    assert outputs[0]["parts"] == [{"type": "text", "content": CANARY_ANSWER}]


def test_instrument_refuses_a_content_hook_that_is_not_a_function() -> None:
    from modelmix.observability import instrument

    with pytest.raises(mm.ConfigurationError, match="content_hook"):
        instrument(content_hook="s3://bucket")  # type: ignore[arg-type]


def test_a_content_hook_that_fails_loses_nothing_but_its_reference(
    server: FaultServer, models: Callable[[str], OpenAIModel], caplog: pytest.LogCaptureFixture
) -> None:
    server.script("b", Fault.ok("fine"))

    def broken(call: CallInfo, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> str:
        raise RuntimeError(f"could not upload {inputs}")

    for otel in make_telemetry(content_hook=broken):
        assert models("b").chat(CANARY_PROMPT).text == "fine"
        [root] = otel.roots()
        assert "modelmix.content.reference" not in attrs(root)
        assert len(otel.children(root)) == 1
    assert "content_hook failed with RuntimeError" in caplog.text
    assert CANARY_PROMPT not in caplog.text
