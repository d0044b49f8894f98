"""Limits that must fire while bytes trickle in, and answers that are complete before EOF.

Real sockets on 127.0.0.1 (the fault server), real time, generous bounds: each server below
would hold the call for minutes, so "well before that" is what is asserted. Sync and async must
both be on time — httpx's per-read timeout never fires while bytes keep arriving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import modelmix as mm
from modelmix.resilience import Clock

from .conftest import assert_pool_released, base_model, resilient
from .faultserver import Fault, FaultServer

# The transport-level tests run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

MSG = "hello"
SLACK = 0.5
"""Seconds allowed past a limit on a loaded 2-core machine (measured lateness is a few ms)."""


def read_sync(model: mm.Model) -> mm.Stream:
    with model.stream(MSG) as stream:
        for _ in stream:
            pass
    return stream


async def read_async(model: mm.Model) -> mm.AsyncStream:
    async with model.astream(MSG) as stream:
        async for _ in stream:
            pass
    return stream


def timed(read: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        read()
    except mm.ModelMixError as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


# ------------------------------------------------------------------------- item 2: trickling bytes


def test_sync_first_token_timeout_fires_while_keep_alive_comments_trickle(server: FaultServer) -> None:
    server.script("a", Fault("slow_drip", chunks=0, drip=0.02))
    model = resilient(server, "a", Clock(), max_retries=0, ttft_timeout=0.5, idle_timeout=5.0, deadline=20.0)
    elapsed, error = timed(lambda: read_sync(model))
    assert isinstance(error, mm.TransportError)
    assert error.kind == "ttft_timeout"
    assert "first-token timeout" in str(error)
    assert 0.5 <= elapsed < 0.5 + SLACK
    assert_pool_released(model)
    model.close()


def test_sync_idle_timeout_fires_while_a_comment_trickles_after_content(server: FaultServer) -> None:
    server.script("a", Fault("slow_drip", chunks=2, drip=0.02))
    model = resilient(server, "a", Clock(), max_retries=0, ttft_timeout=5.0, idle_timeout=0.5, deadline=20.0)
    started = time.monotonic()
    with pytest.raises(mm.StreamStalledError) as caught:
        read_sync(model)
    elapsed = time.monotonic() - started
    assert caught.value.partial_text == "w0 w1 "
    assert "0.5 s idle timeout" in str(caught.value)
    assert elapsed < 0.5 + SLACK
    assert_pool_released(model)
    model.close()


def test_sync_deadline_fires_while_bytes_trickle_after_content(server: FaultServer) -> None:
    server.script("a", Fault("slow_drip", chunks=1, drip=0.02))
    model = resilient(server, "a", Clock(), max_retries=0, deadline=0.8, idle_timeout=None, ttft_timeout=5.0)
    started = time.monotonic()
    with pytest.raises(mm.DeadlineExceededError):
        read_sync(model)
    assert time.monotonic() - started < 0.8 + SLACK
    assert_pool_released(model)
    model.close()


def test_sync_chain_falls_back_when_the_first_member_only_trickles(server: FaultServer) -> None:
    server.script("a", Fault("slow_drip", chunks=0, drip=0.02))
    members = [resilient(server, "a", Clock(), max_retries=0, ttft_timeout=0.4), resilient(server, "b", Clock())]
    with mm.fallback(*members, deadline=10.0, min_attempt_time=0.05) as model:
        elapsed, error = timed(lambda: read_sync(model))
        assert error is None
        assert server.order() == ["a", "b"]
        assert_pool_released(model)
    assert elapsed < 0.4 + SLACK


def test_sync_non_streamed_body_trickling_past_the_deadline(server: FaultServer) -> None:
    server.script("a", Fault("trickle_body", drip=0.02))
    model = resilient(server, "a", Clock(), max_retries=0, deadline=0.8)
    elapsed, error = timed(lambda: model.chat(MSG))
    assert isinstance(error, mm.DeadlineExceededError)
    assert elapsed < 0.8 + SLACK
    assert_pool_released(model)
    model.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_is_on_time_too(server: FaultServer) -> None:
    server.script("a", Fault("slow_drip", chunks=0, drip=0.02))
    model = resilient(server, "a", Clock(), max_retries=0, ttft_timeout=0.5, deadline=20.0)
    started = time.monotonic()
    with pytest.raises(mm.TransportError, match="first-token timeout"):
        await read_async(model)
    assert time.monotonic() - started < 0.5 + SLACK
    await model.aclose()


# ---------------------------------------------------------- item 3: complete before the connection ends


def test_sync_complete_answer_on_a_connection_left_open_is_returned_at_once(server: FaultServer) -> None:
    server.script("a", Fault("done_keep_open", chunks=2))
    model = resilient(server, "a", Clock(), max_retries=0, deadline=8.0, idle_timeout=3.0)
    elapsed, error = timed(lambda: read_sync(model))
    assert error is None
    assert elapsed < 1.0
    assert_pool_released(model)
    model.close()


def test_sync_plain_model_complete_answer_is_returned_at_once(server: FaultServer) -> None:
    server.script("a", Fault("done_keep_open", chunks=2))
    model = base_model(server, "a")
    started = time.monotonic()
    stream = read_sync(model)
    assert time.monotonic() - started < 1.0
    assert stream.response.text == "w0 w1 "
    assert_pool_released(model)
    model.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_complete_answer_on_a_connection_left_open_is_returned_at_once(server: FaultServer) -> None:
    server.script("a", Fault("done_keep_open", chunks=2))
    model = resilient(server, "a", Clock(), max_retries=0, deadline=8.0, idle_timeout=3.0)
    started = time.monotonic()
    stream = await read_async(model)
    assert time.monotonic() - started < 1.0
    assert stream.response.text == "w0 w1 "
    assert_pool_released(model)
    await model.aclose()


def test_the_connection_is_still_reused_after_a_well_ended_stream(server: FaultServer) -> None:
    model = base_model(server, "a")
    for _ in range(3):
        assert read_sync(model).response.text == "Hello"
    pool: Any = model._client._transport._pool  # type: ignore[union-attr]
    assert len(pool.connections) == 1
    model.close()


# ------------------------------------------------------------- item 8: bounded time to first byte


def test_sync_first_token_timeout_covers_a_server_that_never_sends_headers(server: FaultServer) -> None:
    server.script("a", Fault("silent"))
    model = resilient(server, "a", Clock(), max_retries=0, ttft_timeout=0.5, idle_timeout=5.0, deadline=20.0)
    elapsed, error = timed(lambda: read_sync(model))
    assert isinstance(error, mm.TransportError)
    assert error.kind == "ttft_timeout"
    assert "first-token timeout" in str(error)
    assert 0.5 <= elapsed < 0.5 + SLACK
    model.close()


def test_a_whole_answer_waits_a_bounded_time_for_its_first_byte_by_default(server: FaultServer) -> None:
    # No timeout given anywhere: the library's own client decides how long a silent server is waited for.
    model = base_model(server, "a")
    timeout = model._sync_client().timeout
    assert timeout.read is not None
    assert timeout.read <= 120
    assert timeout.connect is not None
    assert timeout.connect <= 10
    model.close()


def test_sync_limits_interrupt_a_tls_read_too() -> None:
    """Over TLS the blocked read sits in the TLS layer; the limit must still end it on time."""
    import ssl

    import httpx
    import trustme

    from modelmix.providers.openai import OpenAIModel

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    with FaultServer(ssl_context=context) as tls_server, httpx.Client(verify=trusting) as client:
        tls_server.script("tls", Fault("slow_drip", chunks=1, drip=0.02))
        inner = OpenAIModel("tls", api_key="sk-test", base_url=tls_server.url("tls"), http_client=client)
        model = mm.ResilientModel(
            inner, policy=mm.RetryPolicy(max_retries=0, deadline=0.8, idle_timeout=None, min_attempt_time=0.05)
        )
        started = time.monotonic()
        with pytest.raises(mm.DeadlineExceededError):
            read_sync(model)
        assert time.monotonic() - started < 0.8 + SLACK
        assert tls_server.count() == 1
