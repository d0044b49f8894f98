"""Counts against the ``usage.prompt_tokens`` OpenAI and Azure OpenAI recorded for real requests.

Every chat request in ``../shared/cassettes/openai`` and ``azure-openai`` whose answer carries
usage is counted from its recorded body (messages, tools, response_format) with the model the
server named, and compared with what the server billed. The difference must be 0, or the one
listed in `DOCUMENTED` (also in docs/tokens.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from modelmix.tokens import count_tokens

from .._support import SHARED_CASSETTES, load_cassette, shared_cassettes

DOCUMENTED: dict[tuple[str, int], int] = {
    # o3-mini frames messages one token tighter than the published recipe (reasoning models).
    ("crewai__test_o3_mini_reasoning_effort_high.json", 0): 1,
    # A JSON-schema response_format is counted as its compact JSON + 4: one token high on this
    # schema (the same request after a tool round is counted exactly).
    ("pydantic-ai__test_openai_native_output.json", 0): 1,
}
"""(file, interaction) → counted minus recorded."""

_PROMPT_TOKENS = re.compile(r'"prompt_tokens":\s*(\d+)')
_MODEL = re.compile(r'"model":\s*"([^"]+)"')


def _cases() -> list[Any]:
    cases = []
    for backend in ("openai", "azure-openai"):
        for path in shared_cassettes(backend):
            for index, interaction in enumerate(load_cassette(path)["interactions"]):
                body = interaction["response"]["body"]
                request = interaction["request"].get("json")
                recorded = _PROMPT_TOKENS.findall(body)
                served_by = _MODEL.findall(body)  # the model the server says answered
                if interaction["response"]["status"] != 200 or not request or not recorded or not served_by:
                    continue
                case = (path, index, request, served_by[0], int(recorded[-1]))
                cases.append(pytest.param(*case, id=f"{backend}/{path.name}#{index}"))
    return cases


CASES = _cases()


def test_the_recordings_are_there_where_shared_is() -> None:
    if not SHARED_CASSETTES.is_dir():
        pytest.skip("../shared/cassettes is absent")
    assert len(CASES) >= 15


@pytest.mark.parametrize(("path", "index", "request_body", "model", "recorded"), CASES)
def test_count_matches_the_recorded_prompt_tokens(
    path: Path, index: int, request_body: dict[str, Any], model: str, recorded: int
) -> None:
    counted = count_tokens(
        request_body["messages"],
        model=model,
        tools=request_body.get("tools"),
        response_format=request_body.get("response_format"),
    )
    assert counted.exact, counted.note
    assert counted.method == "tiktoken"
    difference = counted.tokens - recorded
    expected = DOCUMENTED.get((path.name, index), 0)
    assert difference == expected, (
        f"{path.name}#{index} ({model}): counted {counted.tokens}, recorded {recorded}, "
        f"difference {difference:+d} (documented {expected:+d}); request {json.dumps(request_body)[:400]}"
    )
