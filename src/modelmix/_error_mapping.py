"""Turning what came over the wire into modelmix errors: server retry hints, HTTP status → error
class (a table), and the one place where httpx exceptions are translated."""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from ._error_context import redact_secrets
from ._error_tree import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ModelMixError,
    NotFoundError,
    PermissionDeniedError,
    Phase,
    ProviderError,
    RateLimitError,
    ServerError,
    StreamDecodeError,
    TransportError,
    TransportKind,
    UnexpectedRedirectError,
    UnprocessableEntityError,
)

# ---------------------------------------------------------------------------------------------
# Server hints
# ---------------------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's delay hint in seconds, or None.

    Order: ``retry-after-ms`` → ``x-ms-retry-after-ms`` → ``Retry-After`` as seconds →
    ``Retry-After`` as an HTTP date. Non-finite, non-positive or unparseable values are no hint.
    The cap is applied by the retry policy, not here, so callers can tell "too long" from "none".
    """
    lowered = {k.lower(): v for k, v in headers.items()} if not isinstance(headers, httpx.Headers) else headers
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = lowered.get(name)
        if raw is not None:
            value = _positive_float(raw)
            if value is not None:
                return value / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    value = _positive_float(raw)
    if value is not None:
        return value
    from email.utils import parsedate_to_datetime  # only HTTP dates need it; slow to import

    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return delay if delay > 0 and math.isfinite(delay) else None


def _positive_float(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """The ``x-should-retry`` header as a bool, or None when absent or unrecognised."""
    if isinstance(headers, httpx.Headers):
        raw = headers.get("x-should-retry")
    else:  # a plain dict: header names in any case, as in parse_retry_after
        raw = next((v for k, v in headers.items() if k.lower() == "x-should-retry"), None)
    if raw is None:
        return None
    raw = raw.strip().lower()
    if raw == "true":
        return True
    if raw == "false":
        return False
    return None


# ---------------------------------------------------------------------------------------------
# The one httpx -> modelmix mapping
# ---------------------------------------------------------------------------------------------

_DNS_MARKERS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "getaddrinfo failed",
    "[errno -2]",
    "[errno -3]",
    "[errno -5]",
    "[errno 8]",
    "[errno 11001]",
)


def _connect_kind(exc: BaseException) -> TransportKind:
    chain: list[BaseException] = []
    cursor: BaseException | None = exc
    while cursor is not None and len(chain) < 10:
        chain.append(cursor)
        cursor = cursor.__cause__ or cursor.__context__
    for item in chain:
        if isinstance(item, socket.gaierror):
            return "dns"
        if isinstance(item, ssl.SSLError):
            return "tls"
    text = " ".join(str(item) for item in chain).lower()
    if "certificate_verify_failed" in text or ("ssl" in text and "certificate" in text):
        return "tls"
    if any(marker in text for marker in _DNS_MARKERS):
        return "dns"
    return "connect"


def _transport_error_for(exc: httpx.TransportError, phase: Phase) -> tuple[str, TransportKind, Phase]:
    """Describe an httpx transport exception: (message, kind, phase)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out while connecting", "connect_timeout", "not_sent"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection in the local pool", "pool_timeout", "local"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data from the server within {_read_limit(exc)}", "read_timeout", phase
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out sending the request", "write_timeout", phase
    if isinstance(exc, httpx.TimeoutException):  # pragma: no cover - every concrete subclass is above
        return "timed out", "timeout", phase
    if isinstance(exc, httpx.ConnectError):
        kind = _connect_kind(exc)
        what = {"dns": "could not resolve the host", "tls": "TLS verification failed", "connect": "could not connect"}[
            kind
        ]
        return what, kind, "not_sent"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused or failed the connection", "proxy", "not_sent"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol or closed the connection", "protocol", phase
    if isinstance(exc, httpx.LocalProtocolError):
        return "the request could not be sent as valid HTTP", "protocol", "local"
    if isinstance(exc, httpx.ProtocolError):  # pragma: no cover - both subclasses are above
        return "HTTP protocol error", "protocol", phase
    if isinstance(exc, httpx.ReadError):
        return "the connection failed while reading", "read", phase
    if isinstance(exc, httpx.WriteError):
        return "the connection failed while sending", "write", phase
    if isinstance(exc, httpx.UnsupportedProtocol):  # handled as configuration by the caller
        return "unsupported URL scheme", "network", "local"
    return "network failure", "network", phase


def public_url(url: httpx.URL) -> str:
    """``scheme://host:port/path`` of `url`: what an error may say about where it went.

    The port is always written (two servers on one host differ only by it); the user-info and
    the query string are left out, as either may hold a credential."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{f':{port}' if port else ''}{url.path}"


def _request_url(exc: httpx.HTTPError) -> str | None:
    try:
        return public_url(exc.request.url)
    except RuntimeError:  # an httpx error raised without a request
        return None


def _scrub(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Take what may hold a credential out of the httpx exceptions kept as ``__cause__``.

    An httpx error keeps the request it failed on, and with it every header — an ``api-key``
    header shows whole in ``repr(error.request.headers)``. The exception is modelmix's to drop, so
    it is kept for its type and text only.
    """
    seen: set[int] = set()
    cursor: BaseException | None = exc
    while cursor is not None and id(cursor) not in seen:
        seen.add(id(cursor))
        if isinstance(cursor, httpx.HTTPError):
            cursor._request = None
        if isinstance(cursor, httpx.HTTPStatusError):
            cursor.response._request = None
        if secrets:
            cursor.args = tuple(redact_secrets(arg, secrets) if isinstance(arg, str) else arg for arg in cursor.args)
        cursor = cursor.__cause__ or cursor.__context__


_BAD_REDIRECT = "invalid url in location header"


@contextlib.contextmanager
def translate_httpx_errors(
    *,
    provider: str | None,
    model: str | None,
    host: str | None,
    phase: Phase = "sent_no_response",
    request_id: str | None = None,
    secrets: tuple[str, ...] = (),
    address_hint: str | None = None,
) -> Iterator[None]:
    """Re-raise any httpx exception as the matching modelmix error.

    `phase` is what the caller was doing (sending and waiting for headers, or streaming);
    connect-level failures are always ``not_sent``. A transport error names the URL it tried
    (`public_url`: no credentials, no query) and, from `address_hint`, how to change it. The
    original exception is kept as ``__cause__`` for debugging, without the request it carried and
    with `secrets` removed from its text.
    """
    context: dict[str, Any] = {"provider": provider, "model": model, "host": host, "request_id": request_id}
    try:
        yield
    except httpx.HTTPError as exc:
        url = _request_url(exc)
        _scrub(exc, secrets)
        raise _translated(exc, phase, url, address_hint, context) from exc
    except httpx.InvalidURL as exc:
        _scrub(exc, secrets)
        raise ConfigurationError(f"invalid URL for {provider or 'this provider'}: {exc}") from exc
    except httpx.StreamError as exc:
        # StreamConsumed / StreamClosed / ResponseNotRead / RequestNotRead: a modelmix bug or a
        # response used after close. Typed so callers can still catch ModelMixError.
        raise ModelMixError(f"internal streaming misuse: {type(exc).__name__}") from exc
    except httpx.CookieConflict as exc:
        raise ConfigurationError("conflicting cookies on the HTTP client") from exc


def _translated(
    exc: httpx.HTTPError, phase: Phase, url: str | None, address_hint: str | None, context: dict[str, Any]
) -> ModelMixError:
    host = context["host"]
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConfigurationError(
            f"the base URL for {context['provider'] or 'this provider'} must start with http:// or https:// "
            f"(host {host!r})"
        )
    if isinstance(exc, httpx.RemoteProtocolError) and str(exc).lower().startswith(_BAD_REDIRECT):
        # httpx reads a redirect's Location even when it will not follow it; a target that is not
        # a URL is the server's fault, not a network failure worth sending the request again for.
        return UnexpectedRedirectError(
            f"the server answered with a redirect whose Location header is not a valid URL ({url or host}); "
            "modelmix never follows redirects: point the base URL at the server itself",
            location_host=None,
            phase="status",
            url=url,
            **context,
        )
    if isinstance(exc, httpx.TransportError):
        message, kind, actual_phase = _transport_error_for(exc, phase)
        where = url or host or "unknown host"
        hint = f"; {address_hint}" if address_hint and actual_phase == "not_sent" else ""
        return TransportError(f"{message} ({where}){hint}", kind=kind, phase=actual_phase, url=url, **context)
    if isinstance(exc, httpx.TooManyRedirects):
        return UnexpectedRedirectError("too many redirects", status=310, phase="status", url=url, **context)
    if isinstance(exc, httpx.HTTPStatusError):
        return status_error(exc.response.status_code, "HTTP error status", headers=exc.response.headers, **context)
    if isinstance(exc, httpx.DecodingError):
        return StreamDecodeError("the response body could not be decoded", phase=phase, url=url, **context)
    return ProviderError(f"HTTP failure: {type(exc).__name__}", phase=phase, url=url, **context)


# ---------------------------------------------------------------------------------------------
# HTTP status -> error class
# ---------------------------------------------------------------------------------------------

STATUS_ERROR_CLASSES: Mapping[int | range, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    # A request timeout is the server giving up on a slow request: worth another try.
    408: ServerError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    range(300, 400): UnexpectedRedirectError,
    range(400, 500): BadRequestError,
    range(500, 1000): ServerError,
}
"""Which error class an HTTP status becomes. An exact status wins over a range, and a narrower
range over a wider one; a status in no entry is a plain `APIStatusError`."""

NOT_RETRYABLE_STATUSES = frozenset({501, 505})
"""Server errors that say the request itself can never work here (not implemented, HTTP version)."""


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The most specific entry of `STATUS_ERROR_CLASSES` for `status`."""
    exact = STATUS_ERROR_CLASSES.get(status)
    if exact is not None:
        return exact
    ranges = [key for key in STATUS_ERROR_CLASSES if isinstance(key, range) and status in key]
    if not ranges:
        return APIStatusError
    return STATUS_ERROR_CLASSES[min(ranges, key=len)]


def status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
    key_hint: str | None = None,
    **context: Any,
) -> APIStatusError:
    """The typed error for an HTTP status, built once with its full context.

    Retry hints (``retry-after-ms``, ``Retry-After``, ``x-should-retry``) are read from the
    headers. `context` is what every `ProviderError` takes (provider, model, host, request_id,
    retry_after, retryable...); explicit values there win over the headers. `param` reaches a 422
    and `key_hint` the credential errors (401, 403); other classes have no use for them.
    """
    hdrs: Mapping[str, str] = headers if headers is not None else {}
    cls = error_class_for_status(status)
    context.setdefault("retry_after", parse_retry_after(hdrs))
    context.setdefault("retryable", _retryable_override(status, hdrs))
    context.setdefault("phase", "status")
    details: dict[str, Any] = {}
    if issubclass(cls, UnexpectedRedirectError):
        details["location_host"] = _location_host(hdrs.get("location"))
    if issubclass(cls, UnprocessableEntityError):
        details["param"] = param
    if issubclass(cls, (AuthenticationError, PermissionDeniedError)):
        details["key_hint"] = key_hint
    return cls(message, status=status, code=code, error_type=error_type, **details, **context)


def _location_host(location: str | None) -> str | None:
    """Only the host of a redirect target is kept: the rest of the URL may carry tokens."""
    if not location:
        return None
    try:
        return httpx.URL(location).host
    except httpx.InvalidURL:
        return None


def _retryable_override(status: int, headers: Mapping[str, str]) -> bool | None:
    """The server's ``x-should-retry`` verdict, else a status-specific exception, else None
    (the class's own default)."""
    should_retry = parse_should_retry(headers)
    if should_retry is not None:
        return should_retry
    return False if status in NOT_RETRYABLE_STATUSES else None


def _read_limit(exc: httpx.ReadTimeout) -> str:
    """Which limit fired, in words: the request's read timeout when httpx still knows it."""
    try:
        seconds = exc.request.extensions["timeout"]["read"]
    except (RuntimeError, KeyError, TypeError):  # no request attached, or no timeout recorded
        return "the read timeout (raise it with timeout=)"
    if not isinstance(seconds, (int, float)):
        return "the read timeout (raise it with timeout=)"
    return f"the {seconds:g} s read timeout (raise it with timeout=, or shorten it to fail faster)"
