"""The ``modelmix`` command: chat streams an answer, models lists backends, errors are one line."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
import time

import pytest

from modelmix.cli import main

from .conftest import LlamaServer, free_port, needs_llama


@pytest.fixture(autouse=True)
def nothing_else_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Point every default port at a closed one so results do not depend on what runs on this machine.
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    for variable in ("LLAMACPP_BASE_URL", "VLLM_BASE_URL", "LMSTUDIO_BASE_URL"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{free_port()}/v1")
    for variable in ("MODELMIX_MODEL", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)


def test_console_script_is_declared() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "modelmix"]
    assert entry.value == "modelmix.cli:main"


@needs_llama
def test_chat_streams_from_the_embedded_model_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--max-tokens", "6", "--usage", "Say hello."]) == 0
    out, err = capsys.readouterr()
    assert out.strip(), "the answer goes to stdout"
    assert "Loading SmolLM2-135M-Instruct (embedded model, 98 MB)... ready in" in err
    assert "local:smollm2-135m-instruct:" in err
    assert "out (estimated)" in err


@needs_llama
def test_chat_reads_the_prompt_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Say yes.\n"))
    assert main(["chat", "-m", "local", "--max-tokens", "3", "-"]) == 0
    assert capsys.readouterr().out.strip()


def test_chat_against_a_server(
    llama_server: LlamaServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMACPP_BASE_URL", llama_server.base_url)
    assert main(["chat", "-m", "llamacpp:smollm2", "--max-tokens", "5", "-t", "0", "Name a color."]) == 0
    out, err = capsys.readouterr()
    assert out.strip()
    assert "Loading" not in err


def test_configuration_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "-m", "openai:gpt-4o-mini", "hi"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("modelmix: ConfigurationError: OpenAI needs an API key")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_provider_failure_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "-m", "llamacpp:x", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("modelmix: TransportError: could not connect")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unknown_provider_and_missing_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["chat", "-m", "olama:llama3", "hi"]) == 2
    assert "Did you mean 'ollama'?" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat"]) == 2
    assert "prompt" in capsys.readouterr().err


def test_models_lists_reachable_backends(
    llama_server: LlamaServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMACPP_BASE_URL", llama_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-printed-000111")
    started = time.perf_counter()
    assert main(["models"]) == 0
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert "reachable" in lines["llamacpp"]
    assert llama_server.base_url in lines["llamacpp"]
    assert "llamacpp:smollm2" in out
    assert "unreachable" in lines["ollama"]
    assert "unreachable" in lines["vllm"]
    assert "configured" in lines["openai"]
    assert "sk-test" not in out
    if "ready" in lines["local"]:
        assert "local:smollm2-135m-instruct" in out
    assert elapsed < 10, "probes run concurrently with short timeouts"


@needs_llama
def test_cold_start_in_a_fresh_process() -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "modelmix.cli", "chat", "--max-tokens", "8", "Say hello."],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "Loading SmolLM2-135M-Instruct" in result.stderr
    print(f"cold start: modelmix chat answered in {elapsed:.1f} s")
