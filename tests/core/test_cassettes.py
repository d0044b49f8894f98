"""modelmix's own cassettes (pytest-recording): OpenAIModel against the local stub server.

Replayed by default (record mode "none"; CI never records). To re-record, run
``pytest tests/core/test_cassettes.py --record-mode=rewrite``: the stub server is then started on
127.0.0.1 and the scrubbing vcr config of conftest.py decides what is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

from ._helpers import CANARY_KEY, Driver
from ._stub_server import running_stub
from .conftest import CASSETTE_DIR, PLACEHOLDER

pytestmark = pytest.mark.vcr


@pytest.fixture
def base_url(record_mode: str) -> Iterator[str]:
    if record_mode == "none":
        # Nothing listens on port 9: every answer must come from the cassette.
        yield "http://127.0.0.1:9/v1"
    else:
        with running_stub(key=CANARY_KEY) as stub:
            yield stub.base_url


@pytest.fixture
async def model(base_url: str) -> object:
    model = OpenAIModel(
        "gpt-4o-mini", api_key=CANARY_KEY, base_url=base_url, organization="org-secret-team", project="proj-x"
    )
    yield model
    await model.aclose()


async def test_chat(driver: Driver, model: OpenAIModel) -> None:
    response = await driver.chat(model, "Say hello")
    assert response.text == "Hello there."
    assert response.finish_reason == "stop"
    assert response.usage == mm.Usage(input_tokens=9, output_tokens=3)
    assert response.model == "stub-model-1"
    assert response.request_id == "req_stub_0001"


async def test_stream(driver: Driver, model: OpenAIModel) -> None:
    events, response = await driver.events(model, "Say hello")
    assert [e.text for e in events if isinstance(e, mm.TextDelta)] == ["Hel", "lo", " world"]
    assert response.text == "Hello world"
    assert response.finish_reason == "stop"
    assert response.usage == mm.Usage(input_tokens=9, output_tokens=3)
    assert response.request_id == "req_stub_0002"


async def test_error(driver: Driver, base_url: str) -> None:
    model = OpenAIModel("missing-model", api_key=CANARY_KEY, base_url=base_url)
    try:
        with pytest.raises(mm.NotFoundError) as info:
            await driver.chat(model, "Say hello")
    finally:
        await model.aclose()
    assert info.value.code == "model_not_found"
    assert info.value.request_id == "req_stub_0001"


def test_recorded_cassettes_are_scrubbed() -> None:
    files = sorted((CASSETTE_DIR / "test_cassettes").glob("*.yaml"))
    assert len(files) == 6, [f.name for f in files]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert CANARY_KEY not in text
        assert "org-secret-team" not in text
        assert "stub-cookie-value" not in text
        assert PLACEHOLDER in text, "credential headers are replaced, not dropped"
        assert f"Bearer {PLACEHOLDER}" not in text, "the whole value is replaced"


def test_cassette_dir_is_under_tests() -> None:
    assert Path(__file__).resolve().parent.parent / "cassettes" / "core" == CASSETTE_DIR
