"""Tool-call deltas split arbitrarily assemble to the same calls, in every shape the recorded
backends stream them, and whatever the network does to the bytes.

Shapes (from the recordings and the wire notes):
- ``indexed``: OpenAI — ``index``/``id``/``name`` first, then argument fragments at that index
  (calls may interleave, several deltas may share a chunk);
- ``whole``: Azure catalog models, Ollama /v1 — each whole call in one delta without ``index``;
- ``whole_without_id``: the same without ids either (OpenAI-compatible servers that send none);
- ``index0``: Ollama /v1 parallel calls — every call at ``index: 0``, told apart by their ids,
  whole or as a header and fragments.
Any of them may end with ``finish_reason: "stop"`` instead of ``"tool_calls"``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelmix as mm

from ._helpers import Driver, chunk, sse_body, sse_response
from .conftest import MakeModel

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), JSON_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(JSON_TEXT, children, max_size=3)),
    max_leaves=8,
)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


@st.composite
def tool_calls(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-3 calls: id (distinct), name, arguments (an object) and the text the model wrote."""
    count = draw(st.integers(min_value=1, max_value=3))
    ids = draw(
        st.lists(st.from_regex(r"call_[A-Za-z0-9]{1,12}", fullmatch=True), min_size=count, max_size=count, unique=True)
    )
    calls = []
    for call_id in ids:
        arguments = draw(st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=4))
        text = json.dumps(
            arguments, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")]))
        )
        calls.append({"id": call_id, "name": draw(NAMES), "arguments": arguments, "text": text})
    return calls


def split_text(draw: st.DrawFn, text: str, max_pieces: int = 6) -> list[str]:
    """`text` cut at arbitrary points (pieces may be empty, as some servers send them)."""
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=max_pieces - 1)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def group(draw: st.DrawFn, deltas: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive deltas packed into chunks of one or more deltas."""
    chunks: list[list[dict[str, Any]]] = []
    for delta in deltas:
        share_the_previous_chunk = draw(st.booleans())
        if chunks and share_the_previous_chunk:
            chunks[-1].append(delta)
        else:
            chunks.append([delta])
    return chunks


def indexed(draw: st.DrawFn, calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    streams = []
    for index, call in enumerate(calls):
        header = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        pieces = [{"index": index, "function": {"arguments": p}} for p in split_text(draw, call["text"])]
        streams.append([header, *pieces])
    # Interleave the calls, keeping each call's own order; calls start in index order (a call's
    # place in the answer is the order in which it first appears).
    deltas: list[dict[str, Any]] = []
    started = 0
    while any(streams):
        candidates = [i for i in range(started) if streams[i]]
        if started < len(streams):
            candidates.append(started)
        chosen = draw(st.sampled_from(candidates))
        if chosen == started:
            started += 1
        deltas.append(streams[chosen].pop(0))
    return group(draw, deltas)


def whole(draw: st.DrawFn, calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    deltas = [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["text"]}}
        for call in calls
    ]
    return group(draw, deltas)


def whole_without_id(draw: st.DrawFn, calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    deltas = [{"type": "function", "function": {"name": call["name"], "arguments": call["text"]}} for call in calls]
    return group(draw, deltas)


def index0(draw: st.DrawFn, calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    chunks = []
    for call in calls:
        if draw(st.booleans()):
            chunks.append(
                [{"index": 0, "id": call["id"], "function": {"name": call["name"], "arguments": call["text"]}}]
            )
        else:
            chunks.append([{"index": 0, "id": call["id"], "function": {"name": call["name"], "arguments": ""}}])
            chunks.extend([{"index": 0, "function": {"arguments": p}}] for p in split_text(draw, call["text"]))
    return chunks


SHAPES = {"indexed": indexed, "whole": whole, "whole_without_id": whole_without_id, "index0": index0}


@st.composite
def streams(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], list[bytes], str]:
    """(shape, calls, the SSE body cut into network reads, finish_reason)."""
    calls = draw(tool_calls())
    shape = draw(st.sampled_from(sorted(SHAPES)))
    if shape == "whole_without_id":
        calls = [{**call, "id": None} for call in calls]
    finish = draw(st.sampled_from(["tool_calls", "stop"]))
    payloads: list[dict[str, Any]] = []
    if draw(st.booleans()):  # Ollama repeats role and an empty content in every delta
        payloads.append(chunk(""))
    payloads.extend(chunk(tool_calls=deltas) for deltas in SHAPES[shape](draw, calls))
    payloads.append(chunk(finish=finish))
    if draw(st.booleans()):
        payloads.append({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    body = sse_body(*payloads)
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(body) - 1), max_size=10)))
    reads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return shape, calls, reads, finish


def model_answering(response: httpx.Response) -> tuple[mm.Model, httpx.Client]:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    return mm.model("openai:gpt-4o-mini", api_key="sk-test", http_client=client), client


def assembled(response: mm.ChatResponse) -> list[tuple[str | None, str, dict[str, Any], str | None]]:
    return [(c.id, c.name, c.arguments, c.arguments_error) for c in response.tool_calls]


def expected(calls: list[dict[str, Any]]) -> list[tuple[str | None, str, dict[str, Any], str | None]]:
    return [(c["id"], c["name"], c["arguments"], None) for c in calls]


@SETTINGS
@given(streams())
def test_streamed_tool_calls_assemble_to_the_generated_calls(
    case: tuple[str, list[dict[str, Any]], list[bytes], str],
) -> None:
    shape, calls, reads, _ = case
    model, client = model_answering(sse_response(reads))
    with client, model.stream("call the tools") as stream:
        events = list(stream)
    response = stream.response
    assert assembled(response) == expected(calls), shape
    assert [c.raw_arguments for c in response.tool_calls] == [c["text"] for c in calls]
    # A turn that produced calls is a tool-call turn, whatever finish_reason the server sent.
    assert response.finish_reason == "tool_calls"
    assert response.message.content is None
    # The events a caller saw carry the same calls: one index per call, in order of appearance.
    indexes = [e.index for e in events if isinstance(e, mm.ToolCallDelta)]
    assert sorted(set(indexes)) == list(range(len(calls)))


@SETTINGS
@given(tool_calls(), st.sampled_from(["tool_calls", "stop"]))
def test_the_same_calls_in_one_json_body(calls: list[dict[str, Any]], finish: str) -> None:
    body = {
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["text"]}}
                        for c in calls
                    ],
                },
                "finish_reason": finish,
            }
        ],
    }
    model, client = model_answering(httpx.Response(200, json=body))
    with client:
        response = model.chat("call the tools")
    assert assembled(response) == expected(calls)
    assert response.finish_reason == "tool_calls"


async def test_parallel_calls_at_index_0_are_told_apart_by_their_ids(driver: Driver, make_model: MakeModel) -> None:
    # Ollama /v1: every parallel call at index 0; before the fix the two calls were merged into
    # one with arguments '{"city": "Oslo"}{"city": "Bergen"}'.
    body = sse_body(
        chunk(
            tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]
        ),
        chunk(tool_calls=[{"index": 0, "id": "call_b", "function": {"name": "weather", "arguments": '{"city": '}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Bergen"}'}}]),
        chunk(finish="stop"),
    )
    events, response = await driver.events(make_model(lambda request: sse_response(body)))
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_a", "weather", {"city": "Oslo"}),
        ("call_b", "weather", {"city": "Bergen"}),
    ]
    assert [e.index for e in events if isinstance(e, mm.ToolCallDelta)] == [0, 1, 1]
    assert response.finish_reason == "tool_calls"


async def test_whole_calls_without_index_or_id_in_separate_chunks(driver: Driver, make_model: MakeModel) -> None:
    # Before the fix both deltas landed on one call: arguments '{"x": 1}{"y": 2}', name "a".
    body = sse_body(
        chunk(tool_calls=[{"type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}}]),
        chunk(tool_calls=[{"type": "function", "function": {"name": "b", "arguments": '{"y": 2}'}}]),
        chunk(finish="tool_calls"),
    )
    _, response = await driver.events(make_model(lambda request: sse_response(body)))
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [(None, "a", {"x": 1}), (None, "b", {"y": 2})]


@st.composite
def tagged_text_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Calls a small local model wrote as ``<tool_call>`` text, the content cut arbitrarily."""
    calls = draw(tool_calls())
    text = "\n".join(
        f"<tool_call>\n{json.dumps({'name': c['name'], 'arguments': c['arguments']})}\n</tool_call>" for c in calls
    )
    payloads = [chunk(piece) for piece in split_text(draw, text, max_pieces=12)]
    body = sse_body(*payloads, chunk(finish="stop"))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=len(body) - 1), max_size=10)))
    return calls, [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@SETTINGS
@given(tagged_text_streams())
def test_tool_calls_written_as_text_assemble_to_the_same_calls(case: tuple[list[dict[str, Any]], list[bytes]]) -> None:
    calls, reads = case
    client = httpx.Client(transport=httpx.MockTransport(lambda request: sse_response(reads)))
    model = mm.model("openai-compatible:qwen2.5:0.5b", base_url="http://127.0.0.1:9/v1", http_client=client)
    tools = [{"name": name, "parameters": {"type": "object"}} for name in sorted({c["name"] for c in calls})]
    with client, model.stream("call the tools", tools=tools) as stream:
        list(stream)
    response = stream.response
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (f"call_{i}", c["name"], c["arguments"]) for i, c in enumerate(calls)
    ]
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
