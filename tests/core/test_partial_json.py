"""`PartialJSON`: every prefix of a valid document parses without raising, each prefix's value is
contained in the final one, and the full text gives exactly what `json.loads` gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmix._partial_json import MISSING, PartialJSON

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that exercises escapes: quotes, backslashes, control characters, non-BMP characters
# (surrogate pairs when ASCII-escaped) and lone surrogates.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\/\b\f\n\r\t {}[],:-0123456789eEtrufalsn'),
        st.characters(codec="utf-8"),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    ),
    max_size=12,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(TEXT, children, max_size=5),
    ),
    max_leaves=25,
)
CONTAINERS = st.one_of(st.lists(DOCUMENTS, max_size=4), st.dictionaries(TEXT, DOCUMENTS, max_size=4))


@st.composite
def rendered(draw: st.DrawFn, documents: st.SearchStrategy[Any] = DOCUMENTS) -> tuple[Any, str]:
    """A document and one of the ways a model could write it."""
    document = draw(documents)
    text = json.dumps(
        document,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 0, 2])),
        separators=draw(st.sampled_from([None, (",", ":"), (" , ", " : ")])),
    )
    return document, text


def contained(partial: Any, final: Any) -> bool:
    """Whether `partial` (a prefix's value) is a part of `final` that only grows towards it."""
    if isinstance(partial, dict):
        return isinstance(final, dict) and all(k in final and contained(v, final[k]) for k, v in partial.items())
    if isinstance(partial, list):
        return (
            isinstance(final, list)
            and len(partial) <= len(final)
            and all(contained(p, f) for p, f in zip(partial, final, strict=False))
        )
    if isinstance(partial, str):
        return isinstance(final, str) and final.startswith(partial)
    return type(partial) is type(final) and partial == final


def feed_all(fragments: list[str]) -> PartialJSON:
    parser = PartialJSON()
    for fragment in fragments:
        parser.feed(fragment)
    return parser


@SETTINGS
@given(rendered())
def test_every_prefix_parses_and_converges(case: tuple[Any, str]) -> None:
    _, text = case
    final = json.loads(text)
    parser = PartialJSON()
    for end in range(len(text)):
        parser.feed(text[end])
        value = parser.value
        assert parser.error() is None, (text[: end + 1], parser.error())
        assert value is MISSING or contained(value, final), (text[: end + 1], value)
        # A fresh parser given the whole prefix at once agrees with the incremental one.
        if end % 7 == 0:
            assert _same(feed_all([text[: end + 1]]).value, value)
    assert parser.text == text
    assert _same(parser.finish(), final)
    assert parser.complete
    assert parser.error() is None


@SETTINGS
@given(rendered(CONTAINERS))
def test_a_container_is_complete_without_finish(case: tuple[Any, str]) -> None:
    _, text = case
    parser = feed_all([text])
    assert parser.complete
    assert _same(parser.value, json.loads(text))
    assert parser.json_text == text


@SETTINGS
@given(rendered(), st.data())
def test_arbitrary_fragment_splits(case: tuple[Any, str], data: st.DataObject) -> None:
    _, text = case
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=max(1, len(text) - 1)), max_size=12)))
    fragments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]
    parser = PartialJSON()
    final = json.loads(text)
    for fragment in fragments:
        changed_before = parser.value
        changed = parser.feed(fragment)
        assert changed or _same(parser.value, changed_before)
    assert _same(parser.finish(), final)
    assert parser.complete


@SETTINGS
@given(rendered(CONTAINERS), st.sampled_from(["```json\n", "```\n", "  \n```JSON  \n"]))
def test_a_fence_around_the_document_is_tolerated(case: tuple[Any, str], fence: str) -> None:
    _, text = case
    parser = PartialJSON()
    for char in f"{fence}{text}\n```\nHope this helps!":
        parser.feed(char)
        assert parser.error() is None
    assert parser.complete
    assert _same(parser.value, json.loads(text))
    assert parser.json_text == text


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types throughout (``1 == 1.0 == True`` in Python)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": "Hel', {"a": "Hel"}),  # a text value grows as it streams
        ('{"a": 1, "b', {"a": 1}),  # an unfinished key is left out
        ('{"a": 1, "b":', {"a": 1}),  # so is a key without its value
        ('{"a": 1, "b": -', {"a": 1}),
        ('{"a": 1, "b": 1.', {"a": 1}),
        ('{"a": 1, "b": 12', {"a": 1}),  # could still become 123
        ('{"a": 1, "b": tr', {"a": 1}),
        ('{"a": 1, "b": true', {"a": 1, "b": True}),
        ('[1, {"x": [', [1, {"x": []}]),
        ('["a\\', ["a"]),  # half an escape
        ('["a\\u00', ["a"]),
        ('["\\ud83d', [""]),  # half a surrogate pair waits for its other half
        ('["\\ud83d\\ude00', ["\U0001f600"]),
        ("", MISSING),
        ("   ", MISSING),
        ("``", MISSING),
        ("```json", MISSING),
        ("```json\n[tr", []),
    ],
)
def test_what_a_prefix_determines(text: str, expected: Any) -> None:
    parser = feed_all(list(text))
    assert parser.error() is None
    assert _same(parser.value, expected) or (expected is MISSING and parser.value is MISSING)
    assert not parser.complete


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("Hello", 0),
        ("Sure! Here is the JSON: {}", 0),
        ('{"a": 1,}', 8),
        ("[1 2]", 3),
        ("{'a': 1}", 1),
        ('{"a" 1}', 5),
        ("[01]", 1),
        ('["\\x"]', 2),
        ("```python\nprint()\n```", 10),
        ('{"a": 1} and more', 9),
    ],
)
def test_text_that_can_never_be_json(text: str, where: int) -> None:
    parser = feed_all(list(text))
    error = parser.error()
    assert error is not None
    assert error.startswith("not JSON: ")
    assert error.endswith(f"(at offset {where})")
    assert parser.text == text
    assert not parser.feed("{}")  # nothing more is read after the fault


def test_text_that_ends_too_soon_is_an_error_only_at_finish() -> None:
    parser = feed_all(['{"a": [1, 2'])
    assert parser.error() is None
    assert parser.value == {"a": [1]}
    assert parser.finish() == {"a": [1, 2]}  # the text ended: nothing can extend the 2 any more
    assert parser.error() == "not JSON: the text ended inside the JSON value (at offset 11)"
    assert feed_all([]).finish() is MISSING
    cut_fence = feed_all(["```json\n[1]\n``"])  # only the closing fence was cut short
    assert cut_fence.finish() == [1]
    assert cut_fence.error() is None


def test_feed_reports_changes() -> None:
    assert PartialJSON().value is MISSING
    parser = PartialJSON()
    assert parser.feed("{")  # {} appears
    assert not parser.feed('"ke')  # a key alone changes nothing
    assert not parser.feed('y": ')
    assert parser.feed('"v')  # {"key": "v"}
    assert not parser.feed('"')  # closing the string adds nothing new
    assert not parser.feed(", ")
    assert parser.feed('"n": 5,')
    assert parser.value == {"key": "v", "n": 5}
    assert parser.feed('"m": null}')  # the value, and complete
    assert parser.complete
    assert not parser.feed("  ")
    assert parser.value == {"key": "v", "n": 5, "m": None}


def test_values_read_earlier_are_not_changed_by_later_text() -> None:
    parser = PartialJSON()
    parser.feed('{"a": [1, {"b": "x')
    early = parser.value
    parser.feed('yz"}, 2], "c": 3}')
    assert early == {"a": [1, {"b": "x"}]}
    assert parser.value == {"a": [1, {"b": "xyz"}, 2], "c": 3}


def test_a_top_level_scalar() -> None:
    for text, expected in [("42", 42), ("-0.5e3", -500.0), ('"s"', "s"), ("null", None), ("true", True)]:
        parser = feed_all(list(text))
        assert _same(parser.finish(), expected)
        assert parser.complete
    parser = feed_all(["12 "])  # the space ends the number
    assert parser.complete
    assert parser.value == 12
