"""Every examples/*.py runs as a user would run it — in a subprocess, configured only by the
environment — against a fake OpenAI-compatible server, and prints what it promises."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelmix.testing import FakeOpenAIServer

from ._runner import EXAMPLES, REPO, example_env

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))

CORE_EXAMPLES = ["quickstart", "streaming", "async_chat", "tools", "errors", "testing_with_fakes"]

# What each core example must print. Other examples must exit 0 and print something.
EXPECTED_OUTPUT: dict[str, list[str]] = {
    "reasoning": [
        "o4-mini takes reasoning as reasoning_effort; gpt-4o-mini: None",
        "refused before sending: reasoning (reasoning=) on gpt-4o-mini",
        "the chain answered with o4-mini",
    ],
    "reasoning_across_turns": [
        "answer: It is sunny and 18 °C in Paris.",
        "reasoning summary: The user wants the weather: call the tool.",
        "kept on the message: 1 encrypted item(s) from openai:gpt-5-mini",
        "first request asked for: ['reasoning.encrypted_content']",
        "second request carried: ['reasoning', 'function_call', 'function_call_output']",
    ],
    "quickstart": ["answer: Red, yellow and blue.", "answer: Paris.", "finish reason: stop", "request id: req_"],
    "streaming": ["Waves fold into foam", "[finish: stop", "[finish event: stop]", "[usage event:", "stopped early"],
    "async_chat": ["France? -> Paris.", "Italy? -> Rome.", "Japan? -> Tokyo.", "stream finished: stop"],
    "tools": ["tool get_weather({'city': 'Paris'})", "answer: It is sunny and 18 °C in Paris."],
    "responses_api": [
        "answer: Paris. (finish: stop",
        "store=False",
        "tool call: get_weather({'city': 'Paris'}) finish: tool_calls",
        "truncated: 'Once upon a' finish: length",
        "chain answer: Rome. (tried gpt-5-mini: ServerError, gpt-4o-mini: ok)",
    ],
    "errors": [
        "Did you mean 'openai'?",
        "gpt-does-not-exist: NotFoundError (status 404, retryable=False)",
        "answer from openai:",
    ],
    "retry_hooks": [
        "before retry 1 of function:gpt-4o-mini after RateLimitError",
        "before retry 2 of function:gpt-4o-mini after ServerError",
        "call ok after 3 attempts, answered by function:gpt-4o-mini",
        "answer: Red, yellow and blue.",
        "function:gpt-4o-mini: 2 retries",
    ],
    "testing_with_fakes": ["FunctionModel: 3 tickets", "FakeOpenAIServer: 3 HTTP requests", "all checks passed"],
    "clouds": [
        "databricks  Paris (answered as databricks-meta-llama-3-3-70b-instruct)",
        "bedrock     Paris (answered as openai.gpt-oss-120b-1:0)",
        "fallback chain answered from mistral",
        "together lists: together:fake-model-1",
    ],
}

_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "LLAMA_CPP_LIB", "HF_HOME", "XDG_CACHE_HOME")


def _run(path: Path, server: FakeOpenAIServer) -> subprocess.CompletedProcess[str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(example_env(server))
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_core_examples_exist() -> None:
    present = {path.stem for path in EXAMPLE_FILES}
    assert set(CORE_EXAMPLES) <= present, f"missing examples: {sorted(set(CORE_EXAMPLES) - present)}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_has_a_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"examples/{path.name} needs a module docstring saying what it shows"
    assert len(docstring) > 40, f"the docstring of examples/{path.name} is too short to say what it shows"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_runs(path: Path, docs_server: FakeOpenAIServer) -> None:
    result = _run(path, docs_server)
    report = f"examples/{path.name} exited {result.returncode}"
    report += f"\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, report
    assert result.stdout.strip(), f"examples/{path.name} printed nothing\n{report}"
    for expected in EXPECTED_OUTPUT.get(path.stem, []):
        assert expected in result.stdout, f"examples/{path.name} did not print {expected!r}\n{report}"
    assert "sk-test-docs" not in result.stdout + result.stderr, f"examples/{path.name} leaked the API key"
