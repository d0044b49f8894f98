"""The modelmix error tree.

Every failure a caller can see is a `ModelMixError`. Configuration mistakes are kept apart from
failures of a provider, and provider failures are typed by cause so that retry and fallback
decisions never parse message strings::

    ModelMixError
    ├── ConfigurationError                 bad arguments / environment; fix the call, don't retry
    │   └── MissingDependencyError         an optional extra is not installed
    ├── ProviderError                      the provider (or the way to it) failed
    │   ├── TransportError                 connect / dns / tls / timeout / protocol (kind=...)
    │   ├── APIStatusError                 the server answered with an HTTP error status
    │   │   ├── BadRequestError            400
    │   │   │   ├── ContextLengthExceededError
    │   │   │   └── ContentFilterError     the prompt was rejected by a content filter
    │   │   ├── AuthenticationError        401
    │   │   ├── PermissionDeniedError      403
    │   │   ├── NotFoundError              404 (unknown model / deployment)
    │   │   ├── ConflictError              409
    │   │   ├── UnprocessableEntityError   422
    │   │   ├── RateLimitError             429 (retry_after)
    │   │   ├── ServerError                5xx and 408
    │   │   └── UnexpectedRedirectError    3xx (never followed: credentials stay put)
    │   ├── StreamError                    a streamed answer went wrong
    │   │   ├── StreamInterruptedError     failed after content reached the caller (partial)
    │   │   ├── StreamTruncatedError       ended without a terminator
    │   │   ├── StreamDecodeError          malformed event
    │   │   ├── StreamStalledError         no event within the idle timeout
    │   │   └── StreamErrorEvent           the server sent an error inside the stream
    │   ├── ContentFilteredError           the answer was cut by a content filter
    │   └── ResponseTooLargeError          a size cap was hit
    ├── AllModelsFailedError               every model of a fallback chain failed (also an ExceptionGroup)
    ├── DeadlineExceededError
    ├── CircuitOpenError
    └── RetryBudgetExhaustedError

`asyncio.CancelledError` and other cancellation exceptions are never wrapped.

The one place where httpx exceptions become modelmix errors is `translate_httpx_errors`.
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx
from typing_extensions import Self

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    from builtins import ExceptionGroup
else:  # pragma: no cover
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from ._messages import ToolCall
    from ._response import Attempt, Usage

__all__ = [
    "UnsupportedCapabilityError",
    "ResponseFilteredError",
    "PromptFilteredError",
    "InBandStreamError",
    "APIStatusError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "ContentFilterError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "MissingDependencyError",
    "ModelMixError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RetryBudgetExhaustedError",
    "ServerError",
    "StreamDecodeError",
    "StreamError",
    "StreamErrorEvent",
    "StreamInterruptedError",
    "StreamStalledError",
    "StreamTruncatedError",
    "TransportError",
    "UnexpectedRedirectError",
    "UnprocessableEntityError",
]

Phase = Literal["not_sent", "sent_no_response", "status", "pre_commit_stream", "post_commit_stream", "local"]
"""Where in a call a failure happened: decides whether a retry is safe."""

TransportKind = Literal[
    "connect",
    "dns",
    "tls",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "pool_timeout",
    "ttft_timeout",
    "timeout",
    "protocol",
    "read",
    "write",
    "proxy",
    "network",
]


class ModelMixError(Exception):
    """Base class of every error modelmix raises."""

    retryable: bool = False
    """Whether trying the same request again may succeed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.attempts: list[Attempt] = []

    def __str__(self) -> str:
        return self.message


class ConfigurationError(ModelMixError):
    """The call or the environment is wrong: a missing key, an unknown provider, a bad argument.

    The message says what to set or change. Never retried.
    """


class MissingDependencyError(ConfigurationError):
    """An optional extra needed for this feature is not installed; the message names the command."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional dependency {module!r}, which is not installed. "
            f"Install it with: pip install 'modelmix[{extra}]'"
        )
        self.extra = extra
        self.module = module


class ProviderError(ModelMixError):
    """A provider, or the network path to it, failed.

    Attributes give the context needed to decide what to do next; none of them ever holds a
    credential, a request header or a response body.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        host: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        phase: Phase | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.host = host
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after
        self.phase = phase
        self.code = code
        self.error_type = error_type

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("provider", self.provider),
                ("model", self.model),
                ("status", self.status),
                ("request_id", self.request_id),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"model={self.model!r}, status={self.status!r})"
        )

    def with_context(self, *, provider: str | None = None, model: str | None = None) -> ProviderError:
        """Fill in provider and model where the raiser did not know them (sans-I/O code)."""
        if self.provider is None:
            self.provider = provider
        if self.model is None:
            self.model = model
        return self


class TransportError(ProviderError):
    """The request could not be completed at the network level.

    `kind` says how: ``connect`` (refused), ``dns``, ``tls``, ``connect_timeout``,
    ``read_timeout``, ``ttft_timeout``, ``protocol`` (e.g. server disconnected), ...
    """

    retryable = True

    def __init__(self, message: str, *, kind: TransportKind, **context: Any) -> None:
        super().__init__(message, **context)
        self.kind: TransportKind = kind
        # A TLS verification failure will not heal by itself.
        if kind == "tls":
            self.retryable = False


class APIStatusError(ProviderError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int, **context: Any) -> None:
        super().__init__(message, status=status, **context)


class BadRequestError(APIStatusError):
    """400: the request is invalid for this model. Fix the request; retrying won't help."""


class ContextLengthExceededError(BadRequestError):
    """The prompt plus the requested output does not fit the model's context window."""

    def __init__(self, message: str, *, limit: int | None = None, requested: int | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.limit = limit
        self.requested = requested


class PromptFilteredError(BadRequestError):
    """The prompt was rejected by the provider's content filter (Azure HTTP 400 ``content_filter``).

    `categories` maps each filter category that fired to its severity (e.g. ``{"violence": "medium"}``).
    """

    def __init__(self, message: str, *, categories: Mapping[str, str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.source: Literal["prompt"] = "prompt"
        self.categories: dict[str, str] = dict(categories or {})


class AuthenticationError(APIStatusError):
    """401: the credential was refused. `key_hint` shows at most the last four characters."""

    def __init__(self, message: str, *, key_hint: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.key_hint = key_hint


class PermissionDeniedError(APIStatusError):
    """403: the credential is valid but may not use this model or resource."""


class NotFoundError(APIStatusError):
    """404: the model or deployment does not exist (or this key cannot see it)."""


class ConflictError(APIStatusError):
    """409: a conflicting operation; OpenAI uses it for transient lock timeouts."""


class UnprocessableEntityError(APIStatusError):
    """422: the server understood the request but a parameter is not supported."""

    def __init__(self, message: str, *, param: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.param = param


class RateLimitError(APIStatusError):
    """429: too many requests or tokens. `retry_after` holds the server's hint in seconds."""

    retryable = True


class ServerError(APIStatusError):
    """5xx (and 408): the server failed. Usually worth retrying or falling back."""

    retryable = True


class UnexpectedRedirectError(APIStatusError):
    """3xx: the endpoint redirected. modelmix never follows, so credentials never travel elsewhere."""

    def __init__(self, message: str, *, location_host: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.location_host = location_host


class StreamError(ProviderError):
    """A streamed answer failed."""


class StreamTruncatedError(StreamError):
    """The stream ended (clean EOF) without ``[DONE]`` or a finish reason: the answer is incomplete.

    `partial_text` holds what arrived before the end.
    """

    retryable = True

    def __init__(self, message: str, *, partial_text: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text


class StreamDecodeError(StreamError):
    """An event could not be decoded. Gives where (`offset`, `length`), never the payload."""

    retryable = True

    def __init__(self, message: str, *, offset: int | None = None, length: int | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.offset = offset
        self.length = length


class StreamStalledError(StreamError):
    """No complete event arrived within the idle timeout."""

    retryable = True

    def __init__(self, message: str, *, partial_text: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text


class InBandStreamError(StreamError):
    """The server reported an error inside a stream that had started with HTTP 200."""

    def __init__(self, message: str, *, mapped: ProviderError | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.mapped = mapped
        if mapped is not None:
            self.retryable = mapped.retryable
            self.retry_after = mapped.retry_after


class StreamInterruptedError(StreamError):
    """The stream failed after content had reached the caller.

    Retrying transparently is no longer possible; what arrived is attached so nothing is lost.
    The underlying failure is `__cause__`.
    """

    def __init__(
        self,
        message: str,
        *,
        partial_text: str = "",
        partial_tool_calls: list[ToolCall] | None = None,
        usage: Usage | None = None,
        n_events: int = 0,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text
        self.partial_tool_calls = list(partial_tool_calls or [])
        self.usage = usage
        self.n_events = n_events


class ResponseFilteredError(ProviderError):
    """The answer was stopped by a content filter (``finish_reason == "content_filter"``).

    Raised only when asked for; otherwise the response carries the finish reason and annotations.
    """

    def __init__(self, message: str, *, partial_text: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text


ContentFilterError = PromptFilteredError
"""Deprecated name of `PromptFilteredError` (kept for one release)."""
ContentFilteredError = ResponseFilteredError
"""Deprecated name of `ResponseFilteredError` (kept for one release)."""
StreamErrorEvent = InBandStreamError
"""Deprecated name of `InBandStreamError` (kept for one release)."""


class ResponseTooLargeError(ProviderError):
    """A response body, SSE line or event exceeded its size cap; the connection was closed."""

    def __init__(self, message: str, *, limit: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.limit = limit


class UnsupportedCapabilityError(ModelMixError):
    """The model's capability profile says it cannot honour part of the request (tools, a
    ``tool_choice`` form, JSON-schema output, images...). Raised before anything is sent.

    A chain moves on to the next model: another model may have the capability.
    """

    def __init__(
        self,
        message: str,
        *,
        capability: str,
        param: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.capability = capability
        self.param = param
        self.provider = provider
        self.model = model


class DeadlineExceededError(ModelMixError):
    """The call's deadline passed before a model answered."""

    retryable = False

    def __init__(self, message: str, *, deadline: float | None = None, phase: str | None = None) -> None:
        super().__init__(message)
        self.deadline = deadline
        self.phase = phase


class CircuitOpenError(ModelMixError):
    """The endpoint's circuit breaker is open; `reopen_at` is when it will accept a probe."""

    def __init__(self, message: str, *, reopen_at: float | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.reopen_at = reopen_at
        self.endpoint = endpoint


class RetryBudgetExhaustedError(ModelMixError):
    """The endpoint's retry budget is spent: retries are skipped to stop a retry storm."""


class AllModelsFailedError(ModelMixError, ExceptionGroup[Exception]):
    """Every model of a fallback chain failed. Also an `ExceptionGroup` of each model's error.

    `exceptions` holds one error per model tried (in order) and `attempts` every attempt, so
    ``except* RateLimitError:`` works as well as ``except AllModelsFailedError:``.
    """

    # BaseExceptionGroup keeps `message` and `exceptions` itself (read-only), so ModelMixError's
    # __init__ (which assigns `message`) is not called.
    def __new__(
        cls, message: str, exceptions: Sequence[Exception], *, attempts: Sequence[Attempt] | None = None
    ) -> Self:
        return super().__new__(cls, message, list(exceptions))

    def __init__(
        self, message: str, exceptions: Sequence[Exception], *, attempts: Sequence[Attempt] | None = None
    ) -> None:
        BaseException.__init__(self, message, list(exceptions))
        self.attempts = list(attempts or [])

    def derive(self, excs: Sequence[Exception]) -> AllModelsFailedError:  # type: ignore[override]
        """Keep the type and the attempts when ``except*`` splits the group."""
        return AllModelsFailedError(self.message, excs, attempts=self.attempts)

    def __str__(self) -> str:
        return f"{self.message} ({len(self.exceptions)} models failed)"

    def __repr__(self) -> str:
        return f"AllModelsFailedError({self.message!r}, {list(self.exceptions)!r})"


# ---------------------------------------------------------------------------------------------
# Server hints
# ---------------------------------------------------------------------------------------------

RETRY_AFTER_CAP = 120.0


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
        return "timed out waiting for the server", "read_timeout", phase
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


@contextlib.contextmanager
def translate_httpx_errors(
    *, provider: str | None, model: str | None, host: str | None, phase: Phase = "sent_no_response"
) -> Iterator[None]:
    """Re-raise any httpx exception as the matching modelmix error.

    `phase` is what the caller was doing (sending and waiting for headers, or streaming);
    connect-level failures are always ``not_sent``. The original exception is kept as
    ``__cause__`` for debugging, but its text is not copied (it may include a full URL).
    """
    context: dict[str, Any] = {"provider": provider, "model": model, "host": host}
    try:
        yield
    except httpx.UnsupportedProtocol as exc:
        raise ConfigurationError(
            f"the base URL for {provider or 'this provider'} must start with http:// or https:// (host {host!r})"
        ) from exc
    except httpx.TransportError as exc:
        message, kind, actual_phase = _transport_error_for(exc, phase)
        raise TransportError(f"{message} ({host or 'unknown host'})", kind=kind, phase=actual_phase, **context) from exc
    except httpx.TooManyRedirects as exc:
        raise UnexpectedRedirectError("too many redirects", status=310, phase="status", **context) from exc
    except httpx.HTTPStatusError as exc:
        raise status_error(
            exc.response.status_code, "HTTP error status", headers=exc.response.headers, **context
        ) from exc
    except httpx.DecodingError as exc:
        raise StreamDecodeError("the response body could not be decoded", phase=phase, **context) from exc
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"invalid URL for {provider or 'this provider'}: {exc}") from exc
    except httpx.StreamError as exc:
        # StreamConsumed / StreamClosed / ResponseNotRead / RequestNotRead: a modelmix bug or a
        # response used after close. Typed so callers can still catch ModelMixError.
        raise ModelMixError(f"internal streaming misuse: {type(exc).__name__}") from exc
    except httpx.CookieConflict as exc:
        raise ConfigurationError("conflicting cookies on the HTTP client") from exc
    except httpx.HTTPError as exc:  # pragma: no cover - any future httpx error class
        raise ProviderError(f"HTTP failure: {type(exc).__name__}", phase=phase, **context) from exc


def status_error(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
    **context: Any,
) -> APIStatusError:
    """The typed error for an HTTP status, with retry hints read from the headers."""
    hdrs: Mapping[str, str] = headers if headers is not None else {}
    retry_after = parse_retry_after(hdrs)
    kwargs: dict[str, Any] = dict(
        context, status=status, code=code, error_type=error_type, retry_after=retry_after, phase="status"
    )
    cls: type[APIStatusError]
    if 300 <= status < 400:
        location = hdrs.get("location")
        return UnexpectedRedirectError(message, location_host=httpx.URL(location).host if location else None, **kwargs)
    if status == 400:
        cls = BadRequestError
    elif status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 422:
        return UnprocessableEntityError(message, param=param, **kwargs)
    elif status == 429:
        cls = RateLimitError
    elif status == 408 or status >= 500:
        cls = ServerError
    else:
        cls = BadRequestError if 400 <= status < 500 else APIStatusError
    error = cls(message, **kwargs)
    if status in (501, 505):
        error.retryable = False
    should_retry = parse_should_retry(hdrs)
    if should_retry is not None:
        error.retryable = should_retry
    return error
