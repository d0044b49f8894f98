"""The fast path: traffic recorded from the real llama.cpp server, replayed (pytest-recording).

Replayed by default (record mode "none", as on CI): nothing listens on the replay URL, so every
answer must come from tests/local/cassettes/. To re-record against a freshly started server::

    pytest tests/local/test_llamacpp_cassettes.py --record-mode=rewrite

The vcr config in conftest.py scrubs credentials and volatile headers and ignores the port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.openai_compatible import OpenAICompatibleModel

pytestmark = pytest.mark.vcr

WEATHER = mm.Tool(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 1}
KEY = "sk-never-recorded-0042"


@pytest.fixture
def base_url(record_mode: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if record_mode == "none":
        yield "http://127.0.0.1:9/v1"  # discard port: a request that misses the cassette fails
    else:
        yield request.getfixturevalue("llama_server").base_url


@pytest.fixture
async def model(base_url: str) -> AsyncIterator[OpenAICompatibleModel]:
    built = OpenAICompatibleModel("smollm2", preset="llamacpp", base_url=base_url, api_key=KEY)
    yield built
    await built.aclose()


async def test_chat(model: OpenAICompatibleModel) -> None:
    response = await model.achat("Say hello.", max_tokens=8, **GREEDY)
    assert response.text.strip()
    assert response.model == "smollm2"
    assert response.usage is not None
    assert not response.usage.estimated
    assert response.usage.output_tokens <= 8


async def test_stream_usage_is_estimated(model: OpenAICompatibleModel) -> None:
    with model.stream("Name a color.", max_tokens=8, **GREEDY) as s:
        deltas = list(s.text_deltas())
    assert len(deltas) >= 2
    assert "".join(deltas) == s.response.text
    assert s.response.usage is not None
    assert s.response.usage.estimated


async def test_streamed_tool_call(model: OpenAICompatibleModel) -> None:
    with model.stream("Weather in Paris?", tools=[WEATHER], tool_choice="get_weather", max_tokens=24, **GREEDY) as s:
        response = s.until_done()
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.arguments_error is None
    assert response.finish_reason == "tool_calls"


async def test_context_overflow(model: OpenAICompatibleModel) -> None:
    with pytest.raises(mm.ContextLengthExceededError) as caught:
        model.chat("word " * 700, max_tokens=8)
    assert caught.value.limit == 512
    assert (caught.value.requested or 0) > 512


async def test_listing(model: OpenAICompatibleModel) -> None:
    assert [m.spec for m in model.list_models()] == ["llamacpp:smollm2"]


@pytest.mark.vcr(record_mode="none")
def test_cassettes_exist_and_hold_no_secrets() -> None:
    from .conftest import CASSETTE_DIR

    files = sorted((CASSETTE_DIR / Path(__file__).stem).glob("*.yaml"))
    assert len(files) >= 5
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert KEY not in text, file.name
        assert "Bearer" not in text, file.name
        assert "127.0.0.1" in text, "recorded from the local server only"
