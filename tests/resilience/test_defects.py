"""One test per resilience defect of issue 8, each written to fail on the code before its fix."""

from __future__ import annotations

import time
from typing import Any

import pytest

import modelmix as mm
from modelmix import _call_deadline
from modelmix._messages import Message
from modelmix.testing import FunctionModel

from .conftest import CANARY
from .faultserver import Fault, FaultServer

MSG = "hello"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------- timeouts survive wrappers


async def test_model_timeout_survives_the_default_retry_wrapper(server: FaultServer) -> None:
    server.script("slow", Fault.ok(delay=30.0))
    model = mm.model("openai-compatible:slow", base_url=server.url("slow"), api_key=CANARY, timeout=2)
    started = time.monotonic()
    with pytest.raises(mm.TransportError) as caught:
        await model.achat(MSG)
    elapsed = time.monotonic() - started
    await model.aclose()
    assert caught.value.kind == "read_timeout"
    # One attempt and its single retry, each cut at 2 s: far from the 30 s the server waits.
    assert elapsed < 15.0
    assert server.count("slow") == 2


def test_retry_wrapper_leaves_the_timeout_setting_alone_and_bounds_the_attempt() -> None:
    seen: list[tuple[dict[str, Any], float]] = []

    def answer(messages: list[Message], settings: dict[str, Any]) -> str:
        seen.append((dict(settings), _call_deadline.remaining()))
        return "ok"

    model = mm.retrying(FunctionModel(answer), deadline=50.0)
    model.chat(MSG, temperature=0.5)
    model.chat(MSG, timeout=7.0)
    (first, first_left), (second, second_left) = seen
    assert "timeout" not in first
    assert second["timeout"] == 7.0
    # The deadline travels on its own channel, for the driver to cut each HTTP phase with.
    assert 45.0 < first_left <= 50.0
    assert 45.0 < second_left <= 50.0
