"""Each request's per-phase timeout: where it comes from, and how a deadline may only shorten it.

The timeout a request goes out with is read from the request's ``timeout`` extension, which is
what httpx's transports obey.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelmix._call_deadline import attempt_ends_in
from modelmix.providers.openai import OpenAIModel

from ._helpers import CANARY_KEY, Driver, completion, sse_body, sse_response

PHASES = ("connect", "read", "write", "pool")


class Recorder:
    def __init__(self) -> None:
        self.timeouts: list[dict[str, float | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(dict(request.extensions["timeout"]))
        if b'"stream":true' in request.content:
            return sse_response(
                sse_body({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]})
            )
        return httpx.Response(200, json=completion())


async def _call(driver: Driver, model: OpenAIModel, kind: str, **settings: Any) -> None:
    if kind == "chat":
        await driver.chat(model, "hi", **settings)
    else:
        await driver.events(model, "hi", **settings)


def _model(recorder: Recorder, client_timeout: httpx.Timeout | None = None, **options: Any) -> OpenAIModel:
    transport = httpx.MockTransport(recorder)
    kwargs: dict[str, Any] = {} if client_timeout is None else {"timeout": client_timeout}
    return OpenAIModel(
        "gpt-4o-mini",
        api_key=CANARY_KEY,
        http_client=httpx.Client(transport=transport, **kwargs),
        async_http_client=httpx.AsyncClient(transport=transport, **kwargs),
        **options,
    )


@pytest.fixture(params=["chat", "stream"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_users_client_keeps_its_own_timeouts(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, client_timeout=httpx.Timeout(3, pool=1))
    await _call(driver, model, kind)
    assert recorder.timeouts == [{"connect": 3, "read": 3, "write": 3, "pool": 1}]


async def test_a_deadline_shortens_every_phase(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, client_timeout=httpx.Timeout(3, pool=1))
    with attempt_ends_in(0.5):
        await _call(driver, model, kind)
    (sent,) = recorder.timeouts
    assert all(sent[phase] is not None and 0 < sent[phase] <= 0.5 for phase in PHASES), sent  # type: ignore[operator]


async def test_a_deadline_never_widens_a_phase(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, client_timeout=httpx.Timeout(3, pool=0.2))
    with attempt_ends_in(60):
        await _call(driver, model, kind)
    (sent,) = recorder.timeouts
    assert sent["pool"] == 0.2
    assert sent["read"] == 3


async def test_a_scalar_model_timeout_does_not_widen_the_library_defaults(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, timeout=100.0)
    await _call(driver, model, kind)
    assert recorder.timeouts == [{"connect": 5.0, "read": 100.0, "write": 30.0, "pool": 10.0}]


async def test_a_small_scalar_bounds_every_phase(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, timeout=2.0)
    await _call(driver, model, kind)
    assert recorder.timeouts == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]


async def test_the_call_setting_wins_over_the_model_and_the_client(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, client_timeout=httpx.Timeout(3, pool=1), timeout=2.0)
    await _call(driver, model, kind, timeout=40.0)
    assert recorder.timeouts == [{"connect": 5.0, "read": 40.0, "write": 30.0, "pool": 10.0}]


async def test_an_explicit_httpx_timeout_on_the_model_is_used_as_given(driver: Driver, kind: str) -> None:
    recorder = Recorder()
    model = _model(recorder, timeout=httpx.Timeout(50, pool=20))
    await _call(driver, model, kind)
    assert recorder.timeouts == [{"connect": 50, "read": 50, "write": 50, "pool": 20}]
