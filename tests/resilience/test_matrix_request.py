"""FAULTS.md §10a, rows 1–20: request-phase faults, against the fault server (or MockTransport
where the fault is a network condition that can't be produced on loopback)."""

from __future__ import annotations

import ssl
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.resilience import BreakerState

from .conftest import (
    CANARY,
    FakeClock,
    Leaks,
    aclose_clients,
    assert_no_secrets,
    assert_pool_released,
    chain,
    policy,
    raising_transport,
    refused_url,
    resilient,
)
from .faultserver import Fault, FaultServer

# The transport-level rows run on both async transports (httpx's and aiohttp's).
pytestmark = pytest.mark.usefixtures("async_transport")

MSG = "hello"


def breaker_of(model: mm.FallbackModel, label: str) -> mm.CircuitBreaker:
    return model.breakers[f"openai:{label}"]


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


# ------------------------------------------------------------------------------- rows 1–3: 429


async def test_row01_429_retry_after_seconds_then_fallback(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture, leaks: Leaks
) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": "2"}))
    async with chain(server, clock, "a", "b") as model:
        response = await model.achat(MSG)
        assert response.text == "Hello"
        assert server.order() == ["a", "a", "a", "b"]
        assert len(clock.sleeps) == 2
        assert all(2.0 <= s <= 2.2 for s in clock.sleeps)
        assert [(a.model, a.retry_no, a.status) for a in response.attempts] == [
            ("a", 0, 429),
            ("a", 1, 429),
            ("a", 2, 429),
            ("b", 0, None),
        ]
        snap = breaker_of(model, "a").snapshot(clock.now())
        assert snap.calls == 0
        assert snap.state is BreakerState.CLOSED
        assert snap.cooldown_until is not None
        assert snap.cooldown_until > clock.now() + 1.5
        assert_pool_released(model)
        assert_no_secrets(caplog, model)


async def test_row01_429_alone_raises_rate_limit_with_hint(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": "2"}))
    async with resilient(server, "a", clock) as model:
        with pytest.raises(mm.RateLimitError) as caught:
            await model.achat(MSG)
    assert caught.value.retry_after == 2.0
    assert [a.retry_no for a in caught.value.attempts] == [0, 1, 2]
    assert server.count("a") == 3


async def test_row02_retry_after_ms_wins(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(429, headers={"retry-after-ms": "1500", "Retry-After": "9"}))
    async with resilient(server, "a", clock) as model:
        with pytest.raises(mm.RateLimitError) as caught:
            await model.achat(MSG)
    assert caught.value.retry_after == 1.5
    assert len(clock.sleeps) == 2
    assert all(1.5 <= s <= 1.65 for s in clock.sleeps)


async def test_row02_x_ms_retry_after_ms_before_retry_after(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(429, headers={"x-ms-retry-after-ms": "700", "Retry-After": "9"}), Fault.ok())
    async with resilient(server, "a", clock) as model:
        await model.achat(MSG)
    assert len(clock.sleeps) == 1
    assert 0.7 <= clock.sleeps[0] <= 0.77


async def test_row03_future_date_beyond_deadline_falls_back_without_sleeping(
    server: FaultServer, clock: FakeClock
) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": http_date(31)}))
    async with chain(server, clock, "a", "b", deadline=10) as model:
        response = await model.achat(MSG)
    assert server.order() == ["a", "b"]
    assert clock.sleeps == []
    assert response.attempts[0].status == 429
    reopen = breaker_of(model, "a").reopen_at(clock.now())
    assert reopen is not None
    assert reopen - clock.now() > 28


async def test_row03_future_date_within_deadline_is_slept(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": http_date(31)}), Fault.ok())
    async with resilient(server, "a", clock, deadline=100.0) as model:
        await model.achat(MSG)
    assert len(clock.sleeps) == 1
    assert 29 <= clock.sleeps[0] <= 31 * 1.1


@pytest.mark.parametrize("value", [http_date(-60), "not a date", "inf", "-3"])
async def test_row03_past_or_malformed_hint_uses_backoff(server: FaultServer, clock: FakeClock, value: str) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": value}))
    async with resilient(server, "a", clock) as model:
        with pytest.raises(mm.RateLimitError) as caught:  # never ValueError
            await model.achat(MSG)
    assert caught.value.retry_after is None
    assert server.count("a") == 3
    assert 0.25 <= clock.sleeps[0] <= 0.5
    assert 0.25 <= clock.sleeps[1] <= 1.0


async def test_row03_hint_over_cap_fails_over_at_once(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(429, headers={"Retry-After": "200"}))
    async with chain(server, clock, "a", "b", deadline=1000) as model:
        await model.achat(MSG)
    assert server.order() == ["a", "b"]
    assert clock.sleeps == []


# ------------------------------------------------------------------------------ rows 4–8: 5xx


@pytest.mark.parametrize(
    ("status", "attempts", "error"),
    [
        (500, 3, mm.ServerError),
        (502, 3, mm.ServerError),
        (503, 3, mm.ServerError),
        (504, 2, mm.ServerError),  # row 7: one retry only
        (408, 3, mm.ServerError),
    ],
)
async def test_rows04_08_server_errors(
    server: FaultServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    leaks: Leaks,
    status: int,
    attempts: int,
    error: type[Exception],
) -> None:
    server.script("a", Fault.error(status))
    async with chain(server, clock, "a", "b") as model:
        response = await model.achat(MSG)
        assert server.order() == ["a"] * attempts + ["b"]
        # Full jitter: retry n waits at most 0.5·2ⁿ.
        assert all(0 <= s <= 0.5 * 2**n for n, s in enumerate(clock.sleeps))
        assert [a.status for a in response.attempts] == [status] * attempts + [None]
        snap = breaker_of(model, "a").snapshot(clock.now())
        assert snap.failures == attempts  # each attempt is a failure sample
        assert_pool_released(model)
    server.reset()
    server.script("a", Fault.error(status))
    async with resilient(server, "a", clock) as alone:
        with pytest.raises(error) as caught:
            await alone.achat(MSG)
    assert getattr(caught.value, "status", None) == status
    assert len(caught.value.attempts) == attempts  # type: ignore[attr-defined]
    assert_no_secrets(caplog, model, error=caught.value)


async def test_row06_503_honours_retry_after(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(503, headers={"Retry-After": "1"}), Fault.ok())
    async with resilient(server, "a", clock) as model:
        await model.achat(MSG)
    assert len(clock.sleeps) == 1
    assert 1.0 <= clock.sleeps[0] <= 1.1


@pytest.mark.parametrize(("status", "retries"), [(501, 0), (505, 0)])
async def test_not_implemented_is_not_retried(server: FaultServer, clock: FakeClock, status: int, retries: int) -> None:
    server.script("a", Fault.error(status))
    async with resilient(server, "a", clock) as model:
        with pytest.raises(mm.ServerError):
            await model.achat(MSG)
    assert server.count("a") == 1 + retries


async def test_x_should_retry_overrides_the_status(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(500, headers={"x-should-retry": "false"}))
    server.script("b", Fault.error(400, headers={"x-should-retry": "true"}), Fault.ok())
    async with resilient(server, "a", clock) as a, resilient(server, "b", clock) as b:
        with pytest.raises(mm.ServerError):
            await a.achat(MSG)
        await b.achat(MSG)
    assert server.count("a") == 1
    assert server.count("b") == 2


async def test_409_retried_only_when_the_error_says_so(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(409), Fault.ok())  # the OpenAI provider marks 409 retryable
    async with resilient(server, "a", clock) as model:
        await model.achat(MSG)
    assert server.count("a") == 2


# -------------------------------------------------------------------------- rows 9–13: network


async def test_row09_connection_refused(
    clock: FakeClock, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    down = mm.ResilientModel(OpenAIModel("local", api_key=CANARY, base_url=refused_url()), policy=policy(), clock=clock)
    async with mm.fallback(down, resilient(server, "b", clock), min_attempt_time=0.05, clock=clock) as model:
        response = await model.achat(MSG)
        assert [(a.model, a.error) for a in response.attempts] == [
            ("local", "TransportError"),
            ("local", "TransportError"),
            ("b", None),
        ]
        assert clock.sleeps == [0.25]
        assert model.breakers["openai:local"].snapshot(clock.now()).failures == 2
    async with down:
        with pytest.raises(mm.TransportError) as caught:
            await down.achat(MSG)
    assert caught.value.kind == "connect"
    assert caught.value.host == "127.0.0.1"
    assert_no_secrets(caplog, down, error=caught.value)


def transport_model(clock: FakeClock, exc: Exception, name: str = "x") -> mm.ResilientModel:
    client = httpx.AsyncClient(transport=raising_transport(exc))
    inner = OpenAIModel(name, api_key=CANARY, base_url=f"https://{name}.invalid/v1", async_http_client=client)
    return mm.ResilientModel(inner, policy=policy(), clock=clock)


async def test_row10_dns_failure(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    model = transport_model(clock, httpx.ConnectError("[Errno -2] Name or service not known"))
    with pytest.raises(mm.TransportError) as caught:
        await model.achat(MSG)
    await aclose_clients(model)
    assert caught.value.kind == "dns"
    assert len(caught.value.attempts) == 2
    assert clock.sleeps == [0.25]
    # Issue 9: the error names the URL it tried, never its query string or credentials.
    assert caught.value.url == "https://x.invalid:443/v1/chat/completions"
    assert "?" not in str(caught.value)
    assert "x.invalid" in str(caught.value.host)
    assert_no_secrets(caplog, model, error=caught.value)


async def test_row11_connect_timeout(clock: FakeClock) -> None:
    model = transport_model(clock, httpx.ConnectTimeout("timed out"))
    with pytest.raises(mm.TransportError) as caught:
        await model.achat(MSG)
    await aclose_clients(model)
    assert caught.value.kind == "connect_timeout"
    assert len(caught.value.attempts) == 3


async def test_row12_silent_server_stream_hits_ttft_then_falls_back(
    server: FaultServer, clock: FakeClock, leaks: Leaks
) -> None:
    server.script("a", Fault("silent"))
    members = [resilient(server, "a", clock, ttft_timeout=0.3), resilient(server, "b", clock)]
    started = time.monotonic()
    async with mm.fallback(*members, min_attempt_time=0.05, clock=clock) as model:
        async with model.astream(MSG) as stream:
            text = "".join([d async for d in stream.text_deltas()])
        assert text == "Hello"
        assert server.order() == ["a", "a", "b"]  # one retry (it may be generating and billing)
        assert [a.error for a in stream.response.attempts] == ["TransportError", "TransportError", None]
        assert_pool_released(model)
    assert time.monotonic() - started < 2.0


async def test_row12_silent_server_chat_bounded_by_deadline(
    server: FaultServer, clock: FakeClock, leaks: Leaks
) -> None:
    server.script("a", Fault("silent"))
    async with resilient(server, "a", clock, deadline=0.5) as model:
        started = time.monotonic()
        with pytest.raises(mm.DeadlineExceededError):
            await model.achat(MSG)
        assert time.monotonic() - started <= 0.5 + 0.05
        assert_pool_released(model)


async def test_row13_reset_before_headers(server: FaultServer, clock: FakeClock, leaks: Leaks) -> None:
    server.script("a", Fault("reset_before_headers"), Fault.ok())
    async with chain(server, clock, "a", "b") as model:
        response = await model.achat(MSG)
        assert server.order() == ["a", "a"]
        assert clock.sleeps == [0.0]
        assert response.attempts[0].error == "TransportError"
        assert breaker_of(model, "a").snapshot(clock.now()).failures == 0  # a stale keep-alive is no failure
        assert_pool_released(model)
    server.reset()
    server.script("a", Fault("reset_before_headers"))
    async with resilient(server, "a", clock) as alone:
        with pytest.raises(mm.TransportError) as caught:
            await alone.achat(MSG)
    assert caught.value.kind in ("protocol", "read")
    assert server.count("a") == 2


# ------------------------------------------------------------------------ rows 14–20: 4xx & co.


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, mm.AuthenticationError), (403, mm.PermissionDeniedError), (404, mm.NotFoundError)],
)
async def test_rows14_15_misconfigured_endpoint(
    server: FaultServer, clock: FakeClock, caplog: pytest.LogCaptureFixture, status: int, error: type[Exception]
) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {CANARY}", "code": "invalid_api_key"}}
    server.script("a", Fault.error(status, body))
    async with chain(server, clock, "a", "b") as model:
        response = await model.achat(MSG)
        assert server.order() == ["a", "b"]
        breaker = breaker_of(model, "a")
        assert breaker.state(clock.now()) is BreakerState.MISCONFIGURED
        assert breaker.reopen_at(clock.now()) == pytest.approx(clock.now() + 300, abs=2)
        assert response.attempts[0].error == error.__name__
        await model.achat(MSG)  # the misconfigured model is skipped, not hammered
        assert server.order() == ["a", "b", "b"]
    server.reset()
    server.script("a", Fault.error(status, body))
    async with resilient(server, "a", clock) as alone:
        with pytest.raises(error) as caught:
            await alone.achat(MSG)
    assert server.count("a") == 1
    if isinstance(caught.value, mm.AuthenticationError):
        assert caught.value.key_hint is not None
        assert caught.value.key_hint.endswith(CANARY[-4:])
    assert_no_secrets(caplog, model, error=caught.value)


CONTEXT_BODY = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
    }
}


async def test_row16_context_length_skips_to_a_larger_window(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(400, CONTEXT_BODY))
    windows = {"a": 8192, "b": 4096, "c": 128000}
    async with chain(server, clock, "a", "b", "c", windows=windows) as model:
        response = await model.achat(MSG)
        assert server.order() == ["a", "c"]
        assert [a.model for a in response.attempts] == ["a", "c"]
        assert breaker_of(model, "a").snapshot(clock.now()).calls == 0  # ignored by the breaker


async def test_row16_no_larger_window_raises_context_error(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(400, CONTEXT_BODY))
    async with chain(server, clock, "a", "b", windows={"a": 8192, "b": 8192}) as model:
        with pytest.raises(mm.ContextLengthExceededError) as caught:
            await model.achat(MSG)
    assert caught.value.limit == 8192
    assert caught.value.requested == 9000
    assert server.order() == ["a"]


FILTER_BODY = {
    "error": {
        "message": "The response was filtered",
        "code": "content_filter",
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"violence": {"filtered": True, "severity": "medium"}},
        },
    }
}


async def test_row17_content_filter_does_not_fall_back(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(400, FILTER_BODY))
    async with chain(server, clock, "a", "b") as model:
        with pytest.raises(mm.PromptFilteredError) as caught:
            await model.achat(MSG)
        assert caught.value.categories == {"violence": "medium"}
        assert server.order() == ["a"]
        assert breaker_of(model, "a").snapshot(clock.now()).calls == 0
    async with chain(server, clock, "a", "b", fallback_on_content_filter=True) as opted_in:
        await opted_in.achat(MSG)
    assert server.order() == ["a", "a", "b"]


async def test_row18_422_falls_back_only_for_a_capability_gap(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(422, {"error": {"message": "bad value"}}))
    async with chain(server, clock, "a", "b") as model:
        with pytest.raises(mm.UnprocessableEntityError):
            await model.achat(MSG)
    assert server.order() == ["a"]
    server.reset()
    server.script("a", Fault.error(422, {"error": {"message": "'logprobs' is not supported", "param": "logprobs"}}))
    async with chain(server, clock, "a", "b") as model:
        await model.achat(MSG)
    assert server.order() == ["a", "b"]


async def test_row18_user_predicate_decides(server: FaultServer, clock: FakeClock) -> None:
    server.script("a", Fault.error(400, {"error": {"message": "anything"}}))
    async with chain(server, clock, "a", "b", fall_back_on=lambda e: isinstance(e, mm.BadRequestError)) as model:
        await model.achat(MSG)
    assert server.order() == ["a", "b"]


async def test_row19_self_signed_server_is_refused(server: FaultServer, clock: FakeClock, leaks: Leaks) -> None:
    """A real TLS handshake on loopback with a certificate from a private CA (trustme)."""
    import trustme

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with FaultServer(ssl_context=context) as tls_server:
        untrusted = mm.ResilientModel(
            OpenAIModel("tls", api_key=CANARY, base_url=tls_server.url("tls")), policy=policy(), clock=clock
        )
        async with mm.fallback(untrusted, resilient(server, "b", clock), clock=clock, min_attempt_time=0.05) as model:
            response = await model.achat(MSG)
            assert [a.error for a in response.attempts] == ["TransportError", None]  # never retried
            assert model.breakers["openai:tls"].state(clock.now()) is BreakerState.MISCONFIGURED
            assert tls_server.count() == 0  # no request got through the failed handshake
        with pytest.raises(mm.TransportError) as caught:
            await untrusted.achat(MSG)
        await untrusted.aclose()
    assert caught.value.kind == "tls"
    assert not caught.value.retryable


async def test_row19_tls_verify_failure(server: FaultServer, clock: FakeClock) -> None:
    bad_tls = transport_model(clock, httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    async with mm.fallback(bad_tls, resilient(server, "b", clock), clock=clock, min_attempt_time=0.05) as model:
        response = await model.achat(MSG)
        assert [a.error for a in response.attempts] == ["TransportError", None]  # no retry
        assert model.breakers["openai:x"].state(clock.now()) is BreakerState.MISCONFIGURED
    await aclose_clients(bad_tls)


async def test_row20_redirect_is_not_followed(server: FaultServer, clock: FakeClock, leaks: Leaks) -> None:
    server.script("a", Fault("redirect"))
    async with chain(server, clock, "a", "b") as model:
        response = await model.achat(MSG)
        assert server.order() == ["a", "b"]  # not followed, not retried
        assert response.attempts[0].error == "UnexpectedRedirectError"
        assert breaker_of(model, "a").snapshot(clock.now()).calls == 0
        assert_pool_released(model)
    server.reset()
    server.script("a", Fault("redirect"))
    async with resilient(server, "a", clock) as alone:
        with pytest.raises(mm.UnexpectedRedirectError) as caught:
            await alone.achat(MSG)
    assert caught.value.location_host == "elsewhere.invalid"
