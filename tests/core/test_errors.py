"""The error tree, the one httpx → modelmix mapping, server retry hints and status mapping."""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._exceptions import parse_retry_after, parse_should_retry, status_error, translate_httpx_errors

REQUEST = httpx.Request("POST", "https://api.example.test/v1/chat/completions")


def httpx_exception_classes() -> list[type[Exception]]:
    """Every exception class httpx exports, discovered from its namespace."""
    found = {
        value
        for value in vars(httpx).values()
        if inspect.isclass(value) and issubclass(value, Exception) and value.__module__.startswith("httpx")
    }
    return sorted(found, key=lambda cls: cls.__name__)


def instantiate(cls: type[Exception]) -> Exception:
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("status", request=REQUEST, response=httpx.Response(503, request=REQUEST))
    if issubclass(cls, httpx.RequestError):
        return cls("failure", request=REQUEST)
    for args in (("failure",), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls.__name__}")  # pragma: no cover


# (modelmix class, kind, phase) per httpx class; phase "given" = the phase passed in.
EXPECTED: dict[str, tuple[type[mm.ModelMixError], str | None, str | None]] = {
    "ConnectTimeout": (mm.TransportError, "connect_timeout", "not_sent"),
    "ReadTimeout": (mm.TransportError, "read_timeout", "given"),
    "WriteTimeout": (mm.TransportError, "write_timeout", "given"),
    "PoolTimeout": (mm.TransportError, "pool_timeout", "local"),
    "TimeoutException": (mm.TransportError, "timeout", "given"),
    "ConnectError": (mm.TransportError, "connect", "not_sent"),
    "ProxyError": (mm.TransportError, "proxy", "not_sent"),
    "RemoteProtocolError": (mm.TransportError, "protocol", "given"),
    "LocalProtocolError": (mm.TransportError, "protocol", "local"),
    "ProtocolError": (mm.TransportError, "protocol", "given"),
    "ReadError": (mm.TransportError, "read", "given"),
    "WriteError": (mm.TransportError, "write", "given"),
    "CloseError": (mm.TransportError, "network", "given"),
    "NetworkError": (mm.TransportError, "network", "given"),
    "TransportError": (mm.TransportError, "network", "given"),
    "UnsupportedProtocol": (mm.ConfigurationError, None, None),
    "TooManyRedirects": (mm.UnexpectedRedirectError, None, "status"),
    "HTTPStatusError": (mm.ServerError, None, "status"),
    "DecodingError": (mm.StreamDecodeError, None, "given"),
    "InvalidURL": (mm.ConfigurationError, None, None),
    "CookieConflict": (mm.ConfigurationError, None, None),
    "StreamError": (mm.ModelMixError, None, None),
    "StreamConsumed": (mm.ModelMixError, None, None),
    "StreamClosed": (mm.ModelMixError, None, None),
    "ResponseNotRead": (mm.ModelMixError, None, None),
    "RequestNotRead": (mm.ModelMixError, None, None),
    "RequestError": (mm.ProviderError, None, "given"),
    "HTTPError": (mm.ProviderError, None, "given"),
}


def translate(exc: BaseException, phase: Any = "sent_no_response") -> BaseException:
    with pytest.raises(BaseException) as info:  # noqa: PT011 - each case asserts the type below
        with translate_httpx_errors(provider="openai", model="gpt-x", host="api.example.test", phase=phase):
            raise exc
    return info.value


def test_discovery_finds_the_whole_httpx_family() -> None:
    names = {cls.__name__ for cls in httpx_exception_classes()}
    assert {"HTTPError", "ConnectError", "StreamClosed", "InvalidURL", "CookieConflict", "PoolTimeout"} <= names


@pytest.mark.parametrize("cls", httpx_exception_classes(), ids=lambda cls: cls.__name__)
def test_every_httpx_exception_maps_to_a_modelmix_error(cls: type[Exception]) -> None:
    original = instantiate(cls)
    raised = translate(original, phase="post_commit_stream")
    assert isinstance(raised, mm.ModelMixError), f"httpx.{cls.__name__} escaped untranslated"
    assert raised.__cause__ is original
    assert "api.example.test/v1" not in str(raised), "the URL of the original is not copied"
    expected = EXPECTED.get(cls.__name__)
    if expected is None:  # pragma: no cover - a class added by a future httpx: typed is enough
        return
    kind_of, kind, phase = expected
    assert type(raised) is kind_of
    if isinstance(raised, mm.ProviderError):
        assert raised.provider == "openai"
        assert raised.model == "gpt-x"
        assert raised.phase == ("post_commit_stream" if phase == "given" else phase)
    if kind is not None:
        assert isinstance(raised, mm.TransportError)
        assert raised.kind == kind
        assert raised.host == "api.example.test"
        assert raised.retryable is True


def _connect_error(cause: BaseException | None = None, text: str = "connection failed") -> httpx.ConnectError:
    error = httpx.ConnectError(text, request=REQUEST)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (_connect_error(socket.gaierror(-2, "Name or service not known")), "dns", True),
        (_connect_error(text="[Errno -3] Temporary failure in name resolution"), "dns", True),
        (_connect_error(ssl.SSLCertVerificationError(1, "certificate verify failed")), "tls", False),
        (_connect_error(text="[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls", False),
        (_connect_error(ConnectionRefusedError(111, "Connection refused")), "connect", True),
    ],
    ids=["gaierror", "dns-text", "ssl-error", "ssl-text", "refused"],
)
def test_connect_error_kinds(error: httpx.ConnectError, kind: str, retryable: bool) -> None:
    raised = translate(error)
    assert isinstance(raised, mm.TransportError)
    assert raised.kind == kind
    assert raised.phase == "not_sent"
    assert raised.retryable is retryable
    assert "api.example.test" in str(raised)


def test_connect_error_cause_found_through_context() -> None:
    inner = socket.gaierror(-2, "Name or service not known")
    error = httpx.ConnectError("wrapped", request=REQUEST)
    error.__context__ = OSError("outer")
    error.__context__.__cause__ = inner
    raised = translate(error)
    assert isinstance(raised, mm.TransportError)
    assert raised.kind == "dns"


def test_http_status_error_maps_by_status() -> None:
    response = httpx.Response(429, headers={"retry-after": "3"}, request=REQUEST)
    raised = translate(httpx.HTTPStatusError("x", request=REQUEST, response=response))
    assert isinstance(raised, mm.RateLimitError)
    assert raised.retry_after == 3.0


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), KeyboardInterrupt(), ValueError("not httpx")])
def test_non_httpx_exceptions_pass_through(exc: BaseException) -> None:
    assert translate(exc) is exc


def test_no_exception_means_nothing_raised() -> None:
    with translate_httpx_errors(provider=None, model=None, host=None):
        pass


def test_unknown_host_and_provider_are_described() -> None:
    raised = translate(httpx.ReadError("x"))
    assert "api.example.test" in str(raised)
    with pytest.raises(mm.TransportError, match="unknown host"):
        with translate_httpx_errors(provider=None, model=None, host=None):
            raise httpx.ReadError("x")


# ------------------------------------------------------------------------------ retry hints

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "x-ms-retry-after-ms": "9000", "retry-after": "20"}, 1.5),
        ({"x-ms-retry-after-ms": "250", "retry-after": "20"}, 0.25),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "garbage", "retry-after": "4"}, 4.0),
        ({"retry-after-ms": "nan", "x-ms-retry-after-ms": "inf", "retry-after": "5"}, 5.0),
        ({"retry-after-ms": "-10", "retry-after": "0"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({}, None),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True)}, 30.0),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW - 30, timezone.utc), usegmt=True)}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected
    assert parse_retry_after(httpx.Headers(headers), now=NOW) == expected


def test_parse_retry_after_date_uses_the_clock_by_default() -> None:
    future = format_datetime(datetime.fromtimestamp(4_000_000_000, timezone.utc), usegmt=True)
    delay = parse_retry_after({"retry-after": future})
    assert delay is not None
    assert delay > 0


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), (" TRUE ", True), ("false", False), ("maybe", None), (None, None)]
)
def test_parse_should_retry(value: str | None, expected: bool | None) -> None:
    headers = {} if value is None else {"x-should-retry": value}
    assert parse_should_retry(headers) is expected
    assert parse_should_retry(httpx.Headers(headers)) is expected
    capitalised = {} if value is None else {"X-Should-Retry": value}
    assert parse_should_retry(capitalised) is expected, "header names are case-insensitive"


# ------------------------------------------------------------------------------ status mapping


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, mm.BadRequestError, False),
        (401, mm.AuthenticationError, False),
        (403, mm.PermissionDeniedError, False),
        (404, mm.NotFoundError, False),
        (408, mm.ServerError, True),
        (409, mm.ConflictError, False),
        (413, mm.BadRequestError, False),
        (418, mm.BadRequestError, False),
        (422, mm.UnprocessableEntityError, False),
        (429, mm.RateLimitError, True),
        (500, mm.ServerError, True),
        (501, mm.ServerError, False),
        (502, mm.ServerError, True),
        (503, mm.ServerError, True),
        (505, mm.ServerError, False),
        (599, mm.ServerError, True),
        (200, mm.APIStatusError, False),
    ],
)
def test_status_error(status: int, cls: type[mm.APIStatusError], retryable: bool) -> None:
    error = status_error(status, "boom", provider="p", model="m", request_id="req-1")
    assert type(error) is cls
    assert error.status == status
    assert error.retryable is retryable
    assert error.phase == "status"
    assert str(error) == f"boom (provider=p, model=m, status={status}, request_id=req-1)"


def test_status_error_redirect_names_only_the_location_host() -> None:
    error = status_error(307, "moved", headers={"location": "https://elsewhere.test/v1/chat?x=1"})
    assert isinstance(error, mm.UnexpectedRedirectError)
    assert error.location_host == "elsewhere.test"
    assert status_error(301, "moved").location_host is None  # type: ignore[attr-defined]


def test_status_error_details() -> None:
    error = status_error(422, "bad", param="temperature", code="unsupported", error_type="invalid_request_error")
    assert isinstance(error, mm.UnprocessableEntityError)
    assert (error.param, error.code, error.error_type) == ("temperature", "unsupported", "invalid_request_error")
    limited = status_error(429, "slow", headers={"retry-after-ms": "100"})
    assert limited.retry_after == 0.1


@pytest.mark.parametrize(("header", "retryable"), [("true", True), ("false", False)])
def test_x_should_retry_overrides_the_status(header: str, retryable: bool) -> None:
    assert status_error(400, "x", headers={"x-should-retry": header}).retryable is retryable
    assert status_error(503, "x", headers={"x-should-retry": header}).retryable is retryable


# ------------------------------------------------------------------------------ error tree


def test_error_tree_shape() -> None:
    assert issubclass(mm.MissingDependencyError, mm.ConfigurationError)
    assert issubclass(mm.ContextLengthExceededError, mm.BadRequestError)
    assert issubclass(mm.ContentFilterError, mm.BadRequestError)
    stream_errors: list[type[Exception]] = [
        mm.StreamInterruptedError,
        mm.StreamTruncatedError,
        mm.StreamDecodeError,
        mm.StreamErrorEvent,
    ]
    provider_errors: list[type[Exception]] = [mm.TransportError, mm.APIStatusError, mm.StreamError]
    top_level: list[type[Exception]] = [mm.ProviderError, mm.ConfigurationError, mm.DeadlineExceededError]
    assert all(issubclass(cls, mm.StreamError) for cls in stream_errors)
    assert all(issubclass(cls, mm.ProviderError) for cls in [*provider_errors, mm.ResponseTooLargeError])
    assert all(issubclass(cls, mm.ModelMixError) for cls in [*top_level, mm.CircuitOpenError])


def test_error_constructors_and_text() -> None:
    missing = mm.MissingDependencyError("Token counting", "tokens", "tiktoken")
    assert "pip install 'modelmix[tokens]'" in str(missing)
    assert (missing.extra, missing.module) == ("tokens", "tiktoken")
    bare = mm.ProviderError("plain")
    assert str(bare) == "plain"
    assert repr(bare) == "ProviderError('plain', provider=None, model=None, status=None)"
    assert bare.with_context(provider="p", model="m") is bare
    assert (bare.provider, bare.model) == ("p", "m")
    bare.with_context(provider="other", model="other")
    assert (bare.provider, bare.model) == ("p", "m")
    assert mm.ProviderError("x", retryable=True).retryable is True
    deadline = mm.DeadlineExceededError("late", deadline=1.0, phase="waiting")
    assert (deadline.deadline, deadline.phase, deadline.retryable) == (1.0, "waiting", False)
    circuit = mm.CircuitOpenError("open", reopen_at=5.0, endpoint="e")
    assert (circuit.reopen_at, circuit.endpoint) == (5.0, "e")
    assert mm.StreamStalledError("idle", partial_text="ab").partial_text == "ab"
    assert mm.ContentFilteredError("cut", partial_text="a").partial_text == "a"
    event = mm.StreamErrorEvent("in band")
    assert event.mapped is None
    assert event.retryable is False
    assert mm.ModelMixError("m").attempts == []
