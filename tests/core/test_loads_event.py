"""`loads_event`: the fast JSON decode of one stream event gives exactly what `json.loads` gives,
value or error, for any text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmix.providers._wire_fields import loads_event

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _outcome(decode: Any, text: str) -> Any:
    try:
        return ("value", decode(text))
    except ValueError as error:
        return ("error", type(error), str(error))


@settings(max_examples=200, deadline=None)
@given(_JSON, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\n"]))
def test_valid_events_decode_like_json_loads(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value) + after
    assert _outcome(loads_event, text) == _outcome(json.loads, text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_text_decodes_or_fails_like_json_loads(text: str) -> None:
    assert _outcome(loads_event, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("text", ['{"a": 1} {"b": 2}', "{", "", "[1,]", '{"a": 1}x', "NaN", "-Infinity"])
def test_edge_cases(text: str) -> None:
    assert _outcome(loads_event, text) == _outcome(json.loads, text)
