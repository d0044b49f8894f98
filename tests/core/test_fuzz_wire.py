"""Fuzzing every wire with mutated real answers: only modelmix errors may come out.

Each example takes a recorded answer from ../shared/cassettes (an OpenAI chat body, one event of
an OpenAI or Azure stream, an Ollama body or one NDJSON line of an Ollama stream), replaces,
deletes or corrupts parts of it, and replays it through the public API (`chat` and `stream` over
`httpx.MockTransport`). A malformed answer may succeed or fail, but a failure must be a typed
`ProviderError` — never a raw ``TypeError``/``ValueError``/``ValidationError``, which would skip
retries and fallback — and must not quote the credential.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelmix as mm
from modelmix.providers.azure import AzureModel
from modelmix.providers.ollama import OllamaModel
from modelmix.providers.openai import OpenAIModel

from .._support import SHARED_CASSETTES, load_cassette
from ._helpers import CANARY_KEY

OPENAI_DIRS = ("openai", "openai-compatible", "ollama-openai", "vllm")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Recording:
    name: str
    status: int
    headers: dict[str, str]
    body: str


def _recordings(directories: tuple[str, ...], *, stream: bool) -> list[Recording]:
    """Successful chat answers (streamed or not) recorded in the shared cassettes."""
    found: list[Recording] = []
    for directory in directories:
        folder = SHARED_CASSETTES / directory
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            cassette = load_cassette(path)
            for expected in cassette["expected"]:
                if expected.get("api", "chat") != "chat" or expected["error"] is not None:
                    continue
                if expected["stream"] != stream:
                    continue
                response = cassette["interactions"][expected["interaction"]]["response"]
                headers = {
                    k: v for k, v in response["headers"].items() if k not in ("content-encoding", "transfer-encoding")
                }
                found.append(
                    Recording(f"{path.stem}#{expected['interaction']}", response["status"], headers, response["body"])
                )
    return found


# ----------------------------------------------------------------------------- mutations

_SPECIAL = st.sampled_from(
    [
        "abc",
        "",
        "\u0663",
        "٣٤",
        "x" * 300,
        0,
        -1,
        12345,
        2**64,
        1.5,
        float("inf"),
        True,
        False,
        None,
        [],
        {},
        [1],
        {"a": 1},
    ]
)
_VALUES = st.recursive(
    _SPECIAL | st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


_FIELDS_READ = frozenset(
    [
        "model",
        "choices",
        "index",
        "message",
        "delta",
        "content",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "finish_reason",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
        "prompt_tokens_details",
        "cached_tokens",
        "content_filter_results",
        "prompt_filter_results",
        "reasoning_content",
        "thinking",
        "done",
        "done_reason",
        "prompt_eval_count",
        "eval_count",
        "error",
    ]
)
"""Keys the codecs read: half of the mutations aim at them, the rest anywhere."""


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _mutate_json(document: Any, data: st.DataObject) -> Any:
    """`document` with one to three parts replaced by hostile values, or deleted."""
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = list(_paths(document))
        read = [p for p in paths if p and p[-1] in _FIELDS_READ]
        aim_at_read_fields: bool = data.draw(st.booleans(), label="a field the codecs read")
        if read and aim_at_read_fields:
            paths = read
        path = data.draw(st.sampled_from(paths), label="path")
        value = copy.deepcopy(data.draw(_VALUES, label="value"))  # the sampled constants are shared
        if not path:
            document = value
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return document


def _mutate_text(text: str, data: st.DataObject) -> str:
    """`text` with a slice cut out or junk inserted (framing and JSON syntax errors)."""
    start = data.draw(st.integers(0, len(text)), label="start")
    end = data.draw(st.integers(start, min(len(text), start + 40)), label="end")
    junk = data.draw(st.text(max_size=6) | st.sampled_from(["\n", "\r", "\n\n", "data: ", "{", '"', "\\u"]))
    return text[:start] + junk + text[end:]


def mutated_body(body: str, data: st.DataObject) -> str:
    if data.draw(st.integers(0, 4), label="text-level") == 0:
        return _mutate_text(body, data)
    return json.dumps(_mutate_json(json.loads(body), data), ensure_ascii=False)


def mutated_stream(body: str, data: st.DataObject, *, sse: bool) -> str:
    """One JSON event (SSE ``data:`` line) or NDJSON line of `body` mutated."""
    lines = body.split("\n")
    json_lines = [i for i, line in enumerate(lines) if line.lstrip().startswith(("data: {", "data:{", "{"))]
    index = data.draw(st.sampled_from(json_lines), label="line")
    line = lines[index]
    prefix = line[: line.index("{")] if sse else ""
    lines[index] = prefix + mutated_body(line[len(prefix) :], data)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- replaying


class Replayer:
    """Models of each wire whose transport answers with whatever recording is current."""

    def __init__(self) -> None:
        self.answer = Recording("none", 200, {}, "")
        transport = httpx.MockTransport(self._handle)
        self.client = httpx.Client(transport=transport)
        self.openai = self._openai()
        self.ollama = OllamaModel("llama3.2", http_client=self.client)
        self.azure = self._azure()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        answer = self.answer
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body.encode("utf-8"))

    def _openai(self) -> OpenAIModel:
        # The compatibility repairs (usage counted offline, tool calls written as text) run too.
        profile = {"estimate_usage": True, "text_tool_calls": True}
        return OpenAIModel("gpt-4o-mini", api_key=CANARY_KEY, http_client=self.client, profile=profile)

    def _azure(self) -> AzureModel:
        return AzureModel(
            "gpt-4o",
            endpoint="https://contoso.openai.azure.com",
            route="deployments",
            api_version="2024-10-21",
            api_key=CANARY_KEY,
            http_client=self.client,
        )


@pytest.fixture(scope="module")
def replayer() -> Iterator[Replayer]:
    replaying = Replayer()
    yield replaying
    replaying.client.close()


def check_only_typed_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except mm.ProviderError as error:
        for text in (str(error), repr(error)):
            assert CANARY_KEY not in text
            assert len(text) < 2_000, "an error message quotes at most a capped part of the answer"
    # Anything else (a raw exception, or a modelmix error that blames the caller) fails the test.


def chat(model: mm.Model) -> Callable[[], object]:
    return lambda: model.chat("hi")


def stream(model: mm.Model) -> Callable[[], object]:
    def run() -> object:
        with model.stream("hi") as answer:
            for _ in answer:
                pass
        return answer.response

    return run


def _cases(recordings: list[Recording], wire: str) -> list[Recording]:
    if not recordings:
        pytest.skip(f"no {wire} recordings: the fuzz tests need ../shared/cassettes (present on CI)")
    return recordings


OPENAI_BODIES = _recordings(OPENAI_DIRS, stream=False)
OPENAI_STREAMS = _recordings(OPENAI_DIRS, stream=True)
AZURE_BODIES = _recordings(("azure-openai",), stream=False)
AZURE_STREAMS = _recordings(("azure-openai",), stream=True)
OLLAMA_BODIES = _recordings(("ollama-native",), stream=False)
OLLAMA_STREAMS = _recordings(("ollama-native",), stream=True)


@FUZZ
@given(data=st.data())
def test_openai_chat_bodies(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(OPENAI_BODIES, "OpenAI chat")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_body(recording.body, data))
    check_only_typed_errors(chat(replayer.openai))


@FUZZ
@given(data=st.data())
def test_openai_stream_chunks(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(OPENAI_STREAMS, "OpenAI stream")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_stream(recording.body, data, sse=True))
    check_only_typed_errors(stream(replayer.openai))


@FUZZ
@given(data=st.data())
def test_azure_bodies(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(AZURE_BODIES, "Azure chat")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_body(recording.body, data))
    check_only_typed_errors(chat(replayer.azure))


@FUZZ
@given(data=st.data())
def test_azure_stream_chunks(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(AZURE_STREAMS, "Azure stream")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_stream(recording.body, data, sse=True))
    check_only_typed_errors(stream(replayer.azure))


@FUZZ
@given(data=st.data())
def test_ollama_bodies(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(OLLAMA_BODIES, "Ollama chat")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_body(recording.body, data))
    check_only_typed_errors(chat(replayer.ollama))


@FUZZ
@given(data=st.data())
def test_ollama_ndjson_lines(replayer: Replayer, data: st.DataObject) -> None:
    recording = data.draw(st.sampled_from(_cases(OLLAMA_STREAMS, "Ollama stream")), label="recording")
    replayer.answer = Recording(recording.name, 200, recording.headers, mutated_stream(recording.body, data, sse=False))
    check_only_typed_errors(stream(replayer.ollama))
