"""The hook interface: one call per user call, each request an attempt of it, for chat and
streams, sync and async, through retries, fallbacks and hedges."""

from __future__ import annotations

import subprocess
import sys
import time

import anyio
import pytest

import modelmix as mm
from modelmix import _observe
from modelmix.observability import AttemptInfo, Hooks, RetryWait, add_hooks, remove_hooks
from modelmix.testing import FakeClock, FakeReply, FunctionModel

from .conftest import Recorder


def _chain(clock: FakeClock) -> mm.Model:
    """A member that fails twice (one retry, after the 2 s its server asks for), then a member that answers."""
    flaky = FunctionModel([FakeReply("busy", status=503, headers={"retry-after": "2"})], name="flaky", clock=clock)
    good = FunctionModel("hello", name="good", clock=clock)
    return mm.fallback(mm.retrying(flaky, max_retries=1, clock=clock), good, clock=clock)


EXPECTED_CHAIN = [
    ("call_started", "flaky"),
    ("request_sent", "flaky", 0, 0),
    ("attempt_finished", "flaky", "error", "ServerError"),
    ("retry_wait", "flaky", 0, 1, "ServerError"),
    ("request_sent", "flaky", 0, 1),
    ("attempt_finished", "flaky", "error", "ServerError"),
    ("request_sent", "good", 1, 0),
    ("attempt_finished", "good", "ok", None),
    ("call_finished", "flaky", "ok", None),
]


def test_a_chain_call_is_one_call_with_an_attempt_per_request(recorder: Recorder) -> None:
    assert _chain(FakeClock()).chat("hi").text == "hello"
    assert recorder.events == EXPECTED_CHAIN
    call = recorder.calls[0]
    assert call.answered_by is call.attempts[-1]
    assert call.answered_by.model == "good"
    assert call.finish_reasons == ["stop"]
    assert call.duration is not None


def test_a_streamed_chain_call_reports_its_first_chunk(recorder: Recorder) -> None:
    with _chain(FakeClock()).stream("hi") as stream:
        assert stream.until_done().text == "hello"
    expected = [*EXPECTED_CHAIN[:-2], ("first_chunk", "good"), *EXPECTED_CHAIN[-2:]]
    assert recorder.events == expected
    call = recorder.calls[0]
    assert call.streaming
    assert call.time_to_first_chunk is not None
    assert call.attempts[-1].time_to_first_chunk is not None


def test_async_chat_and_stream_on_both_backends(recorder: Recorder, both_backends: str) -> None:
    async def run() -> None:
        model = _chain(FakeClock())
        assert (await model.achat("hi")).text == "hello"
        async with model.astream("hi") as stream:
            await stream.until_done()

    anyio.run(run, backend=both_backends)
    expected_stream = [*EXPECTED_CHAIN[:-2], ("first_chunk", "good"), *EXPECTED_CHAIN[-2:]]
    assert recorder.events == EXPECTED_CHAIN + expected_stream


def test_a_retry_wait_is_reported_before_the_sleep(recorder: Recorder, both_backends: str) -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []

    class Timing(Hooks):
        def request_sent(self, attempt: AttemptInfo) -> None:
            seen.append(("sent", clock.now()))

        def retry_wait(self, wait: RetryWait) -> None:
            seen.append(("wait", clock.now()))

    timing = Timing()
    add_hooks(timing)
    try:
        _chain(clock).chat("hi")

        async def run() -> None:
            await _chain(clock).achat("hi")

        anyio.run(run, backend=both_backends)
    finally:
        remove_hooks(timing)
    assert [kind for kind, _ in seen] == ["sent", "wait", "sent", "sent"] * 2
    for told, wait in zip((1, 5), recorder.waits, strict=True):
        assert 2.0 <= wait.seconds <= 2.2  # the server's 2 s, plus up to 10 % jitter
        # Told before the sleep: the retry goes out that long after the hook was called.
        assert seen[told + 1][1] - seen[told][1] == pytest.approx(wait.seconds)
    for wait in recorder.waits:
        assert wait.failed is wait.call.attempts[0]
        assert wait.call.attempts[1].retry_no == wait.retry_no == 1
        assert (wait.provider, wait.model, wait.position, wait.error_type) == ("function", "flaky", 0, "ServerError")


def test_a_streamed_attempt_knows_its_response_id(recorder: Recorder) -> None:
    ids: list[str | None] = []

    class AtFirstChunk(Hooks):
        def first_chunk(self, attempt: AttemptInfo) -> None:
            ids.append(attempt.response_id)

    hooks = AtFirstChunk()
    add_hooks(hooks)
    try:
        with FunctionModel("hello there", name="m", chunks=3).stream("x") as stream:
            stream.until_done()
    finally:
        remove_hooks(hooks)
    assert ids == ["chatcmpl-fake"]
    assert recorder.calls[0].attempts[0].response_id == "chatcmpl-fake"


def test_a_bare_model_is_a_call_with_one_attempt(recorder: Recorder) -> None:
    model = FunctionModel("hi there", name="bare")
    model.chat("x")
    assert recorder.events == [
        ("call_started", "bare"),
        ("request_sent", "bare", 0, 0),
        ("attempt_finished", "bare", "ok", None),
        ("call_finished", "bare", "ok", None),
    ]
    assert recorder.calls[0].in_process


def test_a_stream_closed_before_its_end_finishes_with_reason_error(recorder: Recorder) -> None:
    model = FunctionModel("a longer answer in pieces", name="m", chunks=4)
    with model.stream("x") as stream:
        next(iter(stream.text_deltas()))
    call = recorder.calls[0]
    assert call.outcome == "closed"
    assert call.error_type is None
    assert call.finish_reasons == ["error"]
    assert call.attempts[0].finish_reason == "error"


def test_a_stream_cut_after_content_ends_the_call_with_the_error(recorder: Recorder) -> None:
    model = mm.retrying(FunctionModel(FakeReply("cut short here", drop_after=1), name="m"), clock=FakeClock())
    with pytest.raises(mm.StreamInterruptedError), model.stream("x") as stream:
        stream.until_done()
    call = recorder.calls[0]
    assert call.outcome == "error"
    assert call.error_type == "StreamInterruptedError"
    assert call.finish_reasons == ["error"]
    assert [a.outcome for a in call.attempts] == ["error"]
    assert call.attempts[0].first_chunk_at is not None


def test_a_failed_call_reports_its_error_and_every_attempt(recorder: Recorder) -> None:
    model = mm.retrying(FunctionModel(FakeReply("no", status=500), name="m"), max_retries=2, clock=FakeClock())
    with pytest.raises(mm.ServerError):
        model.chat("x")
    call = recorder.calls[0]
    assert call.outcome == "error"
    assert call.error_type == "ServerError"
    assert [(a.retry_no, a.outcome) for a in call.attempts] == [(0, "error"), (1, "error"), (2, "error")]


async def test_a_hedge_is_one_call_with_both_contenders_as_attempts(recorder: Recorder) -> None:
    slow = FunctionModel(FakeReply("slow", delay=5.0), name="primary")
    fast = FunctionModel("fast", name="backup")
    hedged = mm.hedge(slow, fast, after=0.01)
    assert (await hedged.achat("x")).text == "fast"
    call = recorder.calls[0]
    assert len(recorder.calls) == 1
    assert call.outcome == "ok"
    by_model = {a.model: a for a in call.attempts}
    assert by_model["primary"].position == 0
    assert by_model["primary"].outcome == "cancelled"
    assert by_model["backup"].position == 1
    assert by_model["backup"].outcome == "ok"
    assert call.answered_by is by_model["backup"]


def test_a_hook_that_raises_does_not_change_the_call(recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Hooks):
        def call_finished(self, call: object) -> None:
            raise RuntimeError("observer bug")

    broken = Broken()
    add_hooks(broken)
    try:
        assert FunctionModel("fine").chat("x").text == "fine"
    finally:
        remove_hooks(broken)
    assert "observer bug" in caplog.text
    assert recorder.calls[0].outcome == "ok"


def _active() -> bool:
    return _observe.ACTIVE


def test_hooks_are_off_until_registered_and_after_removal() -> None:
    assert not _active()
    hooks = Recorder()
    add_hooks(hooks)
    assert _active()
    remove_hooks(hooks)
    assert not _active()
    FunctionModel("x").chat("x")
    assert hooks.events == []


def test_add_hooks_refuses_what_is_not_hooks() -> None:
    with pytest.raises(mm.ConfigurationError, match="Hooks"):
        add_hooks(object())  # type: ignore[arg-type]


def test_importing_modelmix_imports_no_opentelemetry() -> None:
    code = (
        "import sys, modelmix, modelmix.observability\n"
        "modelmix.model('openai:gpt-4o-mini', api_key='sk-x').unwrap()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_cascade_is_one_call(recorder: Recorder) -> None:
    cheap = FunctionModel("I don't know", name="cheap")
    strong = FunctionModel("Paris", name="strong")
    cascade = mm.cascade(cheap, strong, accept=lambda r: "don't know" not in r.text)
    assert cascade.chat("capital of France?").text == "Paris"
    assert len(recorder.calls) == 1
    assert [a.model for a in recorder.calls[0].attempts] == ["cheap", "strong"]
    assert recorder.calls[0].model == "cheap"


def test_a_cancelled_call_is_cancelled_not_failed(recorder: Recorder, both_backends: str) -> None:
    async def run() -> None:
        model = mm.retrying(FunctionModel(FakeReply("late", delay=30.0), name="slow"))
        with anyio.move_on_after(0.05):
            await model.achat("x")

    started = time.monotonic()
    anyio.run(run, backend=both_backends)
    assert time.monotonic() - started < 10  # well before the 30 s the reply waits
    call = recorder.calls[0]
    assert call.outcome == "cancelled"
    assert [a.outcome for a in call.attempts] == ["cancelled"]
    assert call.finish_reasons == ["error"]


def test_with_nothing_registered_the_layer_is_never_entered(monkeypatch: pytest.MonkeyPatch) -> None:
    def entered(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hooks layer ran with nothing registered")

    for name in ("_start_call", "_start_attempt", "run_in_slot", "observe_leaf_stream", "observe_stream_call"):
        monkeypatch.setattr(_observe, name, entered)
    clock = FakeClock()
    assert _chain(clock).chat("hi").text == "hello"
    with _chain(clock).stream("hi") as stream:
        assert stream.until_done().text == "hello"
        assert stream._state.observer is None

    async def run() -> None:
        await _chain(clock).achat("hi")
        async with _chain(clock).astream("hi") as astream:
            await astream.until_done()

    anyio.run(run)


def test_a_repaired_stream_still_knows_its_response_id() -> None:
    """Servers whose streams modelmix repairs (usage estimated, tool calls read from text) wrap
    the parser: the wrapper must still hand out the id the events carried."""
    from modelmix.providers._compat_quirks import CompatStreamParser
    from modelmix.providers._openai_wire import OpenAIStreamParser

    parser = CompatStreamParser(OpenAIStreamParser(), prompt_tokens=3, parse_text_tool_calls=False)
    parser.feed(b'data: {"id":"chatcmpl-42","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n')
    assert parser.response_id == "chatcmpl-42"
