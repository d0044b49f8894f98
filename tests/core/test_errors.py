"""The error tree, the one httpx → modelmix mapping, server retry hints and status mapping."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import socket
import ssl
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._exceptions import (
    STATUS_ERROR_CLASSES,
    error_class_for_status,
    parse_retry_after,
    parse_should_retry,
    status_error,
    translate_httpx_errors,
)

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
    assert issubclass(mm.PromptFilteredError, mm.BadRequestError)
    assert issubclass(mm.ResponseFilteredError, mm.ProviderError)
    assert not issubclass(mm.ResponseFilteredError, mm.APIStatusError), "the answer was cut in a 200"
    stream_errors: list[type[Exception]] = [
        mm.StreamInterruptedError,
        mm.StreamTruncatedError,
        mm.StreamDecodeError,
        mm.InBandStreamError,
    ]
    provider_errors: list[type[Exception]] = [mm.TransportError, mm.APIStatusError, mm.StreamError]
    top_level: list[type[Exception]] = [mm.ProviderError, mm.ConfigurationError, mm.DeadlineExceededError]
    assert all(issubclass(cls, mm.StreamError) for cls in stream_errors)
    assert all(issubclass(cls, mm.ProviderError) for cls in [*provider_errors, mm.ResponseTooLargeError])
    assert all(issubclass(cls, mm.ModelMixError) for cls in [*top_level, mm.CircuitOpenError])
    # A local capability mismatch is neither a provider failure nor a caller mistake to stop on.
    assert not issubclass(mm.UnsupportedCapabilityError, (mm.ProviderError, mm.ConfigurationError))


def test_error_constructors_and_text() -> None:
    missing = mm.MissingDependencyError("Token counting", "tokens", "tiktoken")
    assert "pip install 'modelmix[tokens]'" in str(missing)
    assert (missing.extra, missing.module) == ("tokens", "tiktoken")
    bare = mm.ProviderError("plain")
    assert str(bare) == "plain"
    assert repr(bare) == "ProviderError('plain', provider=None, model=None, status=None)"
    assert mm.ProviderError("x", retryable=True).retryable is True
    deadline = mm.DeadlineExceededError("late", deadline=1.0, phase="waiting")
    assert (deadline.deadline, deadline.phase, deadline.retryable) == (1.0, "waiting", False)
    circuit = mm.CircuitOpenError("open", reopen_at=5.0, endpoint="e")
    assert (circuit.reopen_at, circuit.endpoint) == (5.0, "e")
    assert mm.StreamStalledError("idle", partial_text="ab").partial_text == "ab"
    assert mm.ResponseFilteredError("cut", partial_text="a").partial_text == "a"
    event = mm.InBandStreamError("in band")
    assert event.mapped is None
    assert event.retryable is False
    assert mm.ModelMixError("m").attempts == []


# ------------------------------------------------------------------------------ built once, full context


def _all_subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


# Every module that defines errors is imported first, so the walk is the same whatever ran before.
importlib.import_module("modelmix._tools")
importlib.import_module("modelmix._tool_loop")
importlib.import_module("modelmix._structured")
importlib.import_module("modelmix._preflight")
PROVIDER_ERRORS = sorted(set(_all_subclasses(mm.ProviderError)) | {mm.ProviderError}, key=lambda cls: cls.__name__)
# The arguments each class requires besides the message; everything else is shared context.
REQUIRED: dict[str, dict[str, Any]] = {
    "TransportError": {"kind": "connect"},
    "ResponseTooLargeError": {"limit": 10},
    "ToolArgumentsError": {"tool_name": "get_weather", "raw_arguments": "{}"},
    "OutputRefusedError": {"refusal": "I can't help with that."},
    "OutputValidationError": {"raw_text": "{}", "strategy": "native"},
    "ContextWindowExceededError": {
        "limit": 100,
        "requested": 120,
        "input_tokens": 110,
        "output_tokens": 10,
        "exact": True,
        "method": "tiktoken",
    },
}
CONTEXT: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-x",
    "request_id": "req-9",
    "host": "api.example.test",
    "phase": "status",
    "retryable": True,
    "retry_after": 1.5,
    "code": "c",
    "error_type": "t",
}


def test_every_provider_error_is_public() -> None:
    assert {cls.__name__ for cls in PROVIDER_ERRORS} <= set(mm.__all__)


@pytest.mark.parametrize("cls", PROVIDER_ERRORS, ids=lambda cls: cls.__name__)
def test_every_provider_error_takes_its_full_context_at_construction(cls: type[mm.ProviderError]) -> None:
    # The driver builds an error once, with everything it knows; nothing patches it afterwards.
    status: dict[str, Any] = {"status": 503} if issubclass(cls, mm.APIStatusError) else {}
    error = cls("failed", **REQUIRED.get(cls.__name__, {}), **status, **CONTEXT)
    assert {name: getattr(error, name) for name in CONTEXT} == CONTEXT
    assert str(error).startswith("failed (provider=openai, model=gpt-x")


@pytest.mark.parametrize("cls", [mm.AuthenticationError, mm.PermissionDeniedError])
def test_credential_errors_take_a_key_hint(cls: type[mm.APIStatusError]) -> None:
    status = 401 if cls is mm.AuthenticationError else 403
    assert getattr(cls("refused", status=status, key_hint="…abcd"), "key_hint", None) == "…abcd"
    built = status_error(status, "refused", key_hint="…abcd", provider="openai", host="h", request_id="r")
    assert type(built) is cls
    assert (getattr(built, "key_hint", None), built.provider, built.host, built.request_id) == (
        "…abcd",
        "openai",
        "h",
        "r",
    )


def test_status_error_passes_context_through_and_ignores_a_key_hint_where_it_means_nothing() -> None:
    error = status_error(503, "busy", key_hint="…abcd", host="h", phase="pre_commit_stream", retryable=False)
    assert isinstance(error, mm.ServerError)
    assert not hasattr(error, "key_hint")
    assert (error.host, error.phase, error.retryable) == ("h", "pre_commit_stream", False)
    hinted = status_error(429, "slow", headers={"retry-after": "3"}, retry_after=0.5)
    assert hinted.retry_after == 0.5, "an explicit retry_after wins over the header"


def test_in_band_stream_error_takes_retry_hints_from_what_it_maps_to_unless_given() -> None:
    mapped = mm.RateLimitError("slow", status=429, retry_after=2.0)
    inherited = mm.InBandStreamError("x", mapped=mapped)
    assert (inherited.retryable, inherited.retry_after) == (True, 2.0)
    explicit = mm.InBandStreamError("x", mapped=mapped, retryable=False, retry_after=0.5)
    assert (explicit.retryable, explicit.retry_after) == (False, 0.5)


def test_unsupported_capability_error_names_what_and_where() -> None:
    error = mm.UnsupportedCapabilityError(
        "no tools", capability="tools", param="tools", provider="azure", model="phi", host="h.example"
    )
    assert (error.capability, error.param, error.provider, error.model, error.host) == (
        "tools",
        "tools",
        "azure",
        "phi",
        "h.example",
    )
    assert error.retryable is False


# ------------------------------------------------------------------------------ the status table


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (301, mm.UnexpectedRedirectError),
        (408, mm.ServerError),  # exact entry beats the 4xx range
        (413, mm.BadRequestError),
        (422, mm.UnprocessableEntityError),
        (451, mm.BadRequestError),
        (529, mm.ServerError),
        (200, mm.APIStatusError),  # in no entry
        (1000, mm.APIStatusError),
    ],
)
def test_status_table_most_specific_entry_wins(status: int, cls: type[mm.APIStatusError]) -> None:
    assert error_class_for_status(status) is cls
    assert type(status_error(status, "x")) is cls


def test_status_table_narrower_range_wins_over_a_wider_one(monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(STATUS_ERROR_CLASSES)
    table[range(420, 430)] = mm.ConflictError
    monkeypatch.setattr("modelmix._error_mapping.STATUS_ERROR_CLASSES", table)
    assert error_class_for_status(425) is mm.ConflictError
    assert error_class_for_status(429) is mm.RateLimitError
    assert error_class_for_status(431) is mm.BadRequestError


def test_status_error_never_raises_on_a_malformed_location() -> None:
    error = status_error(302, "moved", headers={"location": "https://[::1"})
    assert isinstance(error, mm.UnexpectedRedirectError)
    assert error.location_host is None


def test_tracebacks_name_errors_by_their_public_path() -> None:
    import traceback

    try:
        raise mm.RateLimitError("slow down", status=429)
    except mm.RateLimitError as exc:
        last_line = traceback.format_exception_only(type(exc), exc)[-1]
    assert last_line.startswith("modelmix.RateLimitError: slow down")
    assert all(getattr(mm, cls.__name__) is cls for cls in PROVIDER_ERRORS)
