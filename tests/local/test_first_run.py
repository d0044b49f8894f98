"""The embedded model's first impression: sampling defaults that suit a 135M model, a length cap,
the chat template it was trained with, deadlines that stop generation, and a cost on every answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import modelmix as mm
from modelmix.cli import IN_PROCESS_MAX_TOKENS, main
from modelmix.providers._llama_runtime import LlamaRuntime, embedded_gguf
from modelmix.providers._local_sampling import DEFAULT_MAX_TOKENS, EMBEDDED_REPEAT_PENALTY
from modelmix.providers.local import LocalModel
from modelmix.tokens import _catalog

from .conftest import needs_llama

pytestmark = needs_llama

LONG_STORY = "Tell me a very long story about dragons."


@pytest.fixture(scope="module")
def local() -> LocalModel:
    model = LocalModel()
    model.load()
    return model


class RecordingLlama:
    """Stands in for the loaded llama.cpp model: records the options of each generation and
    answers "ok" at once (as a whole answer or as stream chunks); everything else is the real model's."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_chat_completion(self, **options: Any) -> Any:
        self.calls.append(options)
        if options.get("stream"):
            return iter(self._chunks())
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "test.gguf",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31},
        }

    @staticmethod
    def _chunks() -> Iterator[dict[str, Any]]:
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": "test.gguf"}
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}],
        }
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


@pytest.fixture
def recorded(local: LocalModel, monkeypatch: pytest.MonkeyPatch) -> RecordingLlama:
    runtime = local.load()  # shared by every LocalModel on this file, the CLI's included
    recorder = RecordingLlama(runtime.llama)
    monkeypatch.setattr(runtime, "llama", recorder)
    return recorder


@pytest.fixture
def no_registered_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_catalog, "_overrides", {})


# ----------------------------------------------------------------------------- sampling defaults


def test_embedded_model_samples_with_a_repeat_penalty_and_a_length_cap(
    local: LocalModel, recorded: RecordingLlama
) -> None:
    local.chat("Hi")
    sent = recorded.calls[-1]
    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS
    assert sent["repeat_penalty"] == EMBEDDED_REPEAT_PENALTY


def test_the_callers_settings_win_over_the_defaults(local: LocalModel, recorded: RecordingLlama) -> None:
    local.chat("Hi", max_tokens=7, extra_body={"repeat_penalty": 1.0})
    assert recorded.calls[-1]["max_tokens"] == 7
    assert recorded.calls[-1]["repeat_penalty"] == 1.0
    LocalModel(settings={"max_tokens": 99}).chat("Hi")
    assert recorded.calls[-1]["max_tokens"] == 99
    with local.stream("Hi", max_tokens=3) as stream:
        stream.until_done()
    assert recorded.calls[-1]["max_tokens"] == 3


def test_another_gguf_gets_the_length_cap_but_keeps_llama_cpp_sampling(recorded: RecordingLlama) -> None:
    other = LocalModel(str(embedded_gguf()))  # by path: not treated as the embedded model
    assert not other.embedded
    other.chat("Hi")
    assert recorded.calls[-1]["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "repeat_penalty" not in recorded.calls[-1]


def test_a_question_that_used_to_loop_gets_a_short_answer(local: LocalModel) -> None:
    # Greedy decoding without a repeat penalty answered this with 2,011 tokens of
    # "la femme, la femme, ..." until the context window was full.
    started = time.perf_counter()
    response = local.chat("What is the capital of France?", temperature=0)
    elapsed = time.perf_counter() - started
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.output_tokens < 120
    print(f"capital of France: {response.usage.output_tokens} tokens in {elapsed:.2f} s: {response.text!r}")


def test_the_chat_template_is_the_one_smollm2_was_trained_with(local: LocalModel) -> None:
    runtime: LlamaRuntime = local.load()
    # llama.cpp uses the GGUF's own Jinja template (not a built-in format it guessed) ...
    assert runtime.llama.chat_format == "chat_template.default"
    assert runtime.formatter is not None
    # ... which is ChatML with SmolLM2's default system prompt, replaced by the caller's own.
    prompt = runtime.formatter(messages=[{"role": "user", "content": "Hi"}]).prompt
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    own = runtime.formatter(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert own.prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    assert runtime.llama._model.token_get_text(runtime.llama.token_eos()) == "<|im_end|>"


# ----------------------------------------------------------------------------- the command


def test_the_command_caps_an_in_process_answer(recorded: RecordingLlama, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "-m", "local", "Hi"]) == 0
    assert recorded.calls[-1]["max_tokens"] == IN_PROCESS_MAX_TOKENS
    assert main(["chat", "-m", "local", "--max-tokens", "9", "Hi"]) == 0
    assert recorded.calls[-1]["max_tokens"] == 9
    assert capsys.readouterr().out == "ok\nok\n"


# ----------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_deadline_stops_generation(local: LocalModel, mode: str) -> None:
    model = mm.retrying(local, deadline=2)

    async def call() -> mm.ChatResponse:
        if mode == "sync":
            return model.chat(LONG_STORY, max_tokens=1000, temperature=0)
        return await model.achat(LONG_STORY, max_tokens=1000, temperature=0)

    started = time.perf_counter()
    with pytest.raises(mm.DeadlineExceededError):
        await call()
    elapsed = time.perf_counter() - started
    # 1,000 tokens take 10-30 s on a CPU; generation ends at the token after the deadline.
    assert elapsed < 3.5, f"{mode} call ran {elapsed:.1f} s past a 2 s deadline"
    assert local.load().lock.acquire(timeout=2), "the model is free again"
    local.load().lock.release()


@pytest.fixture(scope="module")
def roomy() -> LocalModel:
    model = LocalModel(n_ctx=4096)
    model.load()
    return model


@pytest.mark.parametrize("mode", ["chat", "achat", "stream", "astream"])
async def test_a_deadline_stops_the_model_while_it_reads_a_long_prompt(roomy: LocalModel, mode: str) -> None:
    long_prompt = "Summarise this: " + "the quick brown fox jumps over the lazy dog. " * 360  # ~3,600 tokens
    model = mm.retrying(roomy, deadline=2)

    async def call() -> object:
        if mode == "chat":
            return model.chat(long_prompt, max_tokens=5)
        if mode == "achat":
            return await model.achat(long_prompt, max_tokens=5)
        if mode == "stream":
            with model.stream(long_prompt, max_tokens=5) as stream:
                return stream.until_done()
        async with model.astream(long_prompt, max_tokens=5) as astream:
            return await astream.until_done()

    started = time.perf_counter()
    with pytest.raises(mm.DeadlineExceededError):
        await call()
    elapsed = time.perf_counter() - started
    # Reading 3,600 tokens one micro-batch at a time takes 5-30 s on a CPU.
    assert elapsed < 3.5, f"{mode}: the prompt was read for {elapsed:.1f} s past a 2 s deadline"
    # The half-read prompt leaves the model usable for the next caller.
    assert roomy.chat("Say ok.", max_tokens=3, temperature=0).text


def test_a_deadline_passing_while_another_caller_generates(local: LocalModel) -> None:
    lock = local.load().lock
    lock.acquire()
    releaser = threading.Timer(6.0, lock.release)  # another caller holding the model for 6 s
    releaser.start()
    try:
        started = time.perf_counter()
        with pytest.raises(mm.DeadlineExceededError):
            mm.retrying(local, deadline=2).chat("Hi", max_tokens=2)
        elapsed = time.perf_counter() - started
    finally:
        releaser.join()
    assert elapsed < 3.5, f"waited {elapsed:.1f} s for the model past a 2 s deadline"


def test_a_local_timeout_is_a_typed_transport_error(recorded: RecordingLlama, local: LocalModel) -> None:
    from modelmix._call_deadline import attempt_ends_in

    lock = local.load().lock
    lock.acquire()
    try:
        with attempt_ends_in(0.2), pytest.raises(mm.TransportError) as caught:
            local.chat("Hi")
    finally:
        lock.release()
    assert caught.value.kind == "pool_timeout"
    assert caught.value.provider == "local"


# ----------------------------------------------------------------------------- usage and cost


def test_answers_report_usage_and_cost_zero(local: LocalModel, no_registered_prices: None) -> None:
    response = local.chat("Say hi.", max_tokens=3, temperature=0)
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert response.cost == 0.0
    with local.stream("Say hi.", max_tokens=3, temperature=0) as stream:
        streamed = stream.until_done()
    assert streamed.usage is not None
    assert streamed.usage.output_tokens > 0
    assert streamed.cost == 0.0


def test_a_registered_price_is_used(local: LocalModel, no_registered_prices: None) -> None:
    mm.register_model_info("smollm2-135m-instruct", mm.ModelInfo(input_per_mtok=1.0, output_per_mtok=2.0))
    response = local.chat("Say hi.", max_tokens=3, temperature=0)
    assert response.usage is not None
    expected = Decimal(response.usage.input_tokens * 1 + response.usage.output_tokens * 2).scaleb(-6)
    assert response.cost == expected
    with local.stream("Say hi.", max_tokens=3, temperature=0) as stream:
        streamed = stream.until_done()
    assert streamed.usage is not None
    expected = Decimal(streamed.usage.input_tokens * 1 + streamed.usage.output_tokens * 2).scaleb(-6)
    assert streamed.cost == expected
