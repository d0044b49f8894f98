"""The sans-I/O SSE and NDJSON decoders, and the OpenAI stream parser on top of them."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmix import InBandStreamError, StreamDecodeError, TextDelta, ToolCallDelta
from modelmix._events import FinishEvent, StreamEvent, UsageEvent
from modelmix._sse import DecoderLimitError, NDJSONDecoder, SSEDecoder, SSEEvent
from modelmix.providers._openai_wire import OpenAIStreamParser


def decode(raw: bytes, **caps: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**caps)
    return [*decoder.feed(raw), *decoder.flush()]


def decode_split(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(raw[start:cut])
        start = cut
    events += decoder.feed(raw[start:])
    return events + decoder.flush()


# ------------------------------------------------------------------------------ unit tests


def test_data_lines_dispatch_on_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(data="one")]


def test_comments_are_ignored_and_counted() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\n\n:another\ndata: x\n\n")
    assert events == [SSEEvent(data="x")]
    assert decoder.comments == 2


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\nbaz\ndata: x\nwhatever:\n\n") == [SSEEvent(data="x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: a\ndata:b\ndata:  c\n\n") == [SSEEvent(data="a\nb\n c")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode(b"data\ndata: x\n\n") == [SSEEvent(data="\nx")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_endings(eol: bytes) -> None:
    raw = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(raw) == [SSEEvent(data="a\nb"), SSEEvent(data="c")]


def test_mixed_line_endings() -> None:
    assert decode(b"data: a\r\ndata: b\rdata: c\n\r\n") == [SSEEvent(data="a\nb\nc")]


def test_event_id_and_retry_fields() -> None:
    events = decode(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events[0] == SSEEvent(data="x", event="delta", id="7", retry=1500)
    # The event type resets after each dispatch; the last event id persists (WHATWG).
    assert events[1].event is None
    assert events[1].id == "7"


def test_invalid_retry_and_id_with_nul_are_ignored() -> None:
    (event,) = decode(b"retry: soon\nid: a\x00b\ndata: x\n\n")
    assert event.retry is None
    assert event.id is None


@pytest.mark.parametrize("value", ["\u0663\u0660\u0660", "\u00b2", "1" * 5000, "-5", "1e3"])
def test_a_retry_field_that_is_not_a_short_ascii_number_is_ignored(value: str) -> None:
    # Non-ASCII digits and 5,000 digits used to escape as a raw ValueError from int().
    (event,) = decode(f"retry: {value}\ndata: x\n\n".encode())
    assert event == SSEEvent(data="x")


def test_event_type_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [SSEEvent(data="x")]


def test_single_empty_data_line_is_not_dispatched() -> None:
    # WHATWG: an empty data buffer dispatches nothing (heartbeats such as "data:\n\n").
    assert decode(b"data:\n\ndata: \n\ndata: x\n\n") == [SSEEvent(data="x")]


def test_flush_dispatches_a_final_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: last") == [SSEEvent(data="a")]
    assert decoder.flush() == [SSEEvent(data="last")]
    assert decoder.flush() == []


def test_flush_of_incomplete_utf8_uses_replacement_character() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: caf\xc3") == []
    assert decoder.flush() == [SSEEvent(data="caf\ufffd")]


def test_consumed_counts_bytes() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: \xc3")
    decoder.feed(b"\xa9\n\n")
    assert decoder.consumed == 10


def test_line_cap() -> None:
    with pytest.raises(DecoderLimitError) as info:
        decode(b"data: " + b"x" * 100 + b"\n\n", max_line=50)
    assert info.value.what == "a line"
    assert info.value.limit == 50
    assert "exceeds 50 bytes" in str(info.value)


def test_line_cap_applies_to_an_unterminated_line() -> None:
    decoder = SSEDecoder(max_line=50)
    decoder.feed(b"data: " + b"x" * 40)
    with pytest.raises(DecoderLimitError):
        decoder.feed(b"x" * 40)


def test_line_cap_with_cr_line_endings() -> None:
    with pytest.raises(DecoderLimitError):
        decode(b"data: " + b"x" * 100 + b"\r\r", max_line=50)


def test_event_cap() -> None:
    raw = b"".join(b"data: " + b"x" * 30 + b"\n" for _ in range(10)) + b"\n"
    with pytest.raises(DecoderLimitError) as info:
        decode(raw, max_line=100, max_event=200)
    assert info.value.what == "an event"
    # Under the cap the same event passes.
    assert decode(raw, max_line=100, max_event=1000)[0].data.count("\n") == 9


def _feed_byte_at_a_time(decoder: SSEDecoder | NDJSONDecoder, raw: bytes) -> float:
    started = time.perf_counter()
    for index in range(len(raw)):
        decoder.feed(raw[index : index + 1])
    decoder.flush()
    return time.perf_counter() - started


@pytest.mark.parametrize("decoder_class", [SSEDecoder, NDJSONDecoder])
def test_a_long_line_fed_byte_by_byte_costs_linear_time(decoder_class: type[SSEDecoder | NDJSONDecoder]) -> None:
    # Baseline: the same number of bytes as short lines, fed the same way. Assembling one long
    # line must not cost more per byte than many short ones (it cost ~5x more at 512 KiB
    # before, and grows with the square of the line length).
    size = 768 * 1024
    prefix = b"data: " if decoder_class is SSEDecoder else b""
    short_line = prefix + b"x" * 56 + b"\n\n"
    short_lines = short_line * (size // len(short_line))
    long_line = prefix + b"x" * size + b"\n\n"
    # Interleaved, best of two each: a burst of load on a shared machine hits both sides.
    baselines, longs = [], []
    for _ in range(2):
        baselines.append(_feed_byte_at_a_time(decoder_class(), short_lines))
        longs.append(_feed_byte_at_a_time(decoder_class(), long_line))
    baseline, long = min(baselines), min(longs)
    assert long < 3 * baseline + 0.1, f"{long:.2f}s for one long line vs {baseline:.2f}s for short lines"


def test_a_long_line_split_anywhere_is_assembled_whole() -> None:
    decoder = SSEDecoder()
    payload = "é" * 3000 + "\r\n"
    raw = ("data: " + payload).encode()
    events = []
    for index in range(0, len(raw), 7):
        events += decoder.feed(raw[index : index + 7])
    events += decoder.feed(b"\r\n")
    assert events == [SSEEvent(data="é" * 3000)]


def test_ndjson_returns_non_blank_lines() -> None:
    decoder = NDJSONDecoder()
    first, second = b'{"a": 1}\n\n  \n{"b"', b': 2}\r\n{"c": 3}'
    assert decoder.feed(first) == ['{"a": 1}']
    assert decoder.feed(second) == ['{"b": 2}']
    assert decoder.flush() == ['{"c": 3}']
    assert decoder.consumed == len(first) + len(second)


def test_ndjson_line_cap() -> None:
    with pytest.raises(DecoderLimitError):
        NDJSONDecoder(max_line=10).feed(b'{"a": "0123456789"}\n')


def test_ndjson_flush_of_blank_tail_is_empty() -> None:
    decoder = NDJSONDecoder()
    decoder.feed(b'{"a": 1}\n   ')
    assert decoder.flush() == []


# ------------------------------------------------------------------------------ property tests

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=12)
_eol = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """Random but valid event streams: comments, unknown fields, event/id/retry, any line ending,
    multi-byte characters; sometimes without a final blank line."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["data", "data", "comment", "event", "id", "retry", "unknown"]))
            eol = draw(_eol)
            if kind == "data":
                parts.append(f"data:{draw(st.sampled_from(['', ' ']))}{draw(_text)}{eol}")
            elif kind == "comment":
                parts.append(f":{draw(_text)}{eol}")
            elif kind == "retry":
                parts.append(f"retry: {draw(st.integers(0, 10_000))}{eol}")
            elif kind == "unknown":
                parts.append(f"x-{draw(_text)}: {draw(_text)}{eol}")
            else:
                parts.append(f"{kind}: {draw(_text)}{eol}")
        parts.append(draw(_eol))
    if draw(st.booleans()):
        parts.append(f"data: {draw(_text)}")
    return "".join(parts).encode("utf-8")


@given(raw=sse_streams(), data=st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sse_events_do_not_depend_on_chunk_boundaries(raw: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=len(raw) + 1))
    assert decode_split(raw, cuts) == decode(raw)


@given(raw=sse_streams())
@settings(max_examples=100, deadline=None)
def test_sse_byte_at_a_time_equals_whole(raw: bytes) -> None:
    assert decode_split(raw, list(range(len(raw)))) == decode(raw)


def test_split_between_cr_and_lf_is_one_line_end() -> None:
    raw = b"data: a\r\n\r\ndata: b\r\n\r\n"
    for cut in range(len(raw) + 1):
        assert decode_split(raw, [cut]) == [SSEEvent(data="a"), SSEEvent(data="b")], cut


def test_split_inside_utf8_sequences() -> None:
    raw = "data: héllo 🌍 ✓\n\n".encode()
    for cut in range(len(raw) + 1):
        assert decode_split(raw, [cut]) == [SSEEvent(data="héllo 🌍 ✓")], cut


_OPENAI_STREAM = (
    "data: "
    + json.dumps({"model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]})
    + "\r\n\r\n: keep-alive\r\n\r\n"
    + "".join(
        "data: " + json.dumps({"model": "gpt-4o", "choices": [{"index": 0, "delta": d, "finish_reason": f}]}) + "\n\n"
        for d, f in [
            ({"role": "assistant", "content": ""}, None),
            ({"content": "Grüße, "}, None),
            ({"content": "世界 🌍"}, None),
            ({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]}, None),
            ({"tool_calls": [{"index": 0, "function": {"arguments": ': "é"}'}}]}, None),
            ({}, "tool_calls"),
        ]
    )
    + "data: "
    + json.dumps({"model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    + "\n\ndata: [DONE]\n\n"
).encode()


def parse_split(raw: bytes, cuts: list[int]) -> tuple[list[StreamEvent], bool, str | None]:
    parser = OpenAIStreamParser()
    events: list[StreamEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(raw[start:cut])
        start = cut
    events += parser.feed(raw[start:])
    events += parser.flush()
    return events, parser.done, parser.model


def test_openai_parser_whole_stream() -> None:
    events, done, model = parse_split(_OPENAI_STREAM, [])
    assert done
    assert model == "gpt-4o"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Grüße, ", "世界 🌍"]
    assert next(e for e in events if isinstance(e, ToolCallDelta)).name == "f"
    assert FinishEvent("tool_calls") in events
    assert isinstance(events[-1], UsageEvent)
    assert events[-1].usage.output_tokens == 4


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_openai_parser_events_do_not_depend_on_chunk_boundaries(data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(_OPENAI_STREAM)), max_size=40))
    assert parse_split(_OPENAI_STREAM, cuts) == parse_split(_OPENAI_STREAM, [])


@given(deltas=st.lists(st.text(max_size=8), min_size=1, max_size=6), data=st.data())
@settings(max_examples=100, deadline=None)
def test_openai_parser_random_text_any_split(deltas: list[str], data: st.DataObject) -> None:
    raw = (
        "".join(
            "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": d}}]}, ensure_ascii=False) + "\n\n"
            for d in deltas
        )
        + "data: [DONE]\n\n"
    ).encode()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    events, done, _ = parse_split(raw, cuts)
    assert done
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(deltas)


def test_openai_parser_ignores_events_after_done() -> None:
    parser = OpenAIStreamParser()
    assert parser.feed(b"data: [DONE]\n\ndata: {not json}\n\n") == []
    assert parser.done


def test_openai_parser_decode_errors_give_position_not_payload() -> None:
    parser = OpenAIStreamParser()
    with pytest.raises(StreamDecodeError) as info:
        parser.feed(b'data: {"secret-payload": \n\n')
    assert "secret-payload" not in str(info.value)
    assert "secret-payload" not in repr(info.value)
    assert info.value.offset == len(b'data: {"secret-payload": \n\n')
    assert info.value.length == len('{"secret-payload": ')
    with pytest.raises(StreamDecodeError, match="not a JSON object"):
        OpenAIStreamParser().feed(b"data: [1, 2]\n\n")


@pytest.mark.parametrize(
    ("payload", "event_type", "mapped"),
    [
        ({"error": {"message": "slow down", "type": "rate_limit_exceeded"}}, None, "RateLimitError"),
        ({"error": {"message": "too long", "code": "context_length_exceeded"}}, None, "ContextLengthExceededError"),
        ({"error": {"message": "bad key", "type": "authentication_error"}}, None, "AuthenticationError"),
        ({"error": {"message": "gone", "code": "model_not_found"}}, None, "NotFoundError"),
        ({"type": "error", "message": "overloaded"}, None, "ServerError"),
        ({"message": "upstream failed"}, "error", "ServerError"),
    ],
)
def test_openai_parser_in_band_errors(payload: dict[str, object], event_type: str | None, mapped: str) -> None:
    prefix = f"event: {event_type}\n" if event_type else ""
    with pytest.raises(InBandStreamError) as info:
        OpenAIStreamParser().feed(f"{prefix}data: {json.dumps(payload)}\n\n".encode())
    error = info.value
    assert type(error.mapped).__name__ == mapped
    assert error.mapped is not None
    assert error.retryable is error.mapped.retryable
    assert error.mapped.phase == "pre_commit_stream"


def test_the_openai_parser_takes_decoded_objects_without_a_json_round_trip() -> None:
    from modelmix._events import TextDelta, UsageEvent
    from modelmix.providers._openai_wire import OpenAIStreamParser

    parser = OpenAIStreamParser()
    events = parser.feed_object({"model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]})
    events += parser.feed_object({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    before = parser.done
    finished = parser.feed_object("[DONE]")
    assert (before, finished, parser.done) == (False, [], True)
    assert [type(e) for e in events] == [TextDelta, UsageEvent]
    assert parser.model == "m"


# The one-event-per-chunk fast path must give what the general path gives, whatever came before.
_FIELD_LINES = st.sampled_from(
    ['data: {"a": 1}', 'data:{"b": 2}', "data: ", "data: é∑😀", ": keep-alive", "event: ping", "id: 7", "retry: 10"]
)
_EVENTS = st.lists(st.lists(_FIELD_LINES, min_size=1, max_size=3), min_size=1, max_size=6)


def _decoded(decoder: SSEDecoder, chunks: list[bytes]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events + decoder.flush()


@settings(max_examples=150, deadline=None)
@given(_EVENTS, st.sampled_from(["\n", "\r\n"]), st.data())
def test_whole_event_chunks_decode_like_byte_by_byte_feeding(
    events: list[list[str]], newline: str, data: st.DataObject
) -> None:
    blocks = [(newline.join(lines) + newline + newline).encode("utf-8") for lines in events]
    body = b"".join(blocks)
    reference = _decoded(SSEDecoder(), [body[i : i + 1] for i in range(len(body))])
    # One event per chunk (the fast path), with some chunks split or merged around them.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=4)))
    edges = [0, *cuts, len(body)]
    pieces = [body[a:b] for a, b in itertools.pairwise(edges) if b > a]
    assert _decoded(SSEDecoder(), pieces) == reference
    assert _decoded(SSEDecoder(), blocks) == reference
    # Each line its own chunk, the blank line riding with the line before it: an event's last
    # "data:" line then arrives as a whole-event-looking chunk after the event's other fields.
    by_line = [
        (line + newline + (newline if position == len(lines) - 1 else "")).encode("utf-8")
        for lines in events
        for position, line in enumerate(lines)
    ]
    assert _decoded(SSEDecoder(), by_line) == reference
