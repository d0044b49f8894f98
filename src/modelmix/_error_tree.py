"""The classes of the modelmix error tree (drawn, with what each means, in `modelmix._exceptions`).

Every error is built once, with everything known about the failure passed to its constructor:
provider, model, host, request id, phase, and the class's own details. Code that raises never
patches an error afterwards, so an error object seen by a retry loop, a breaker or a log line is
the same everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from typing_extensions import Self

if sys.version_info >= (3, 11):  # pragma: no cover - depends on the interpreter
    from builtins import ExceptionGroup
else:  # pragma: no cover
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from decimal import Decimal

    from ._messages import ToolCall
    from ._response import Attempt, Usage

__all__ = [
    "APIStatusError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "InBandStreamError",
    "MissingDependencyError",
    "ModelMixError",
    "NotFoundError",
    "PermissionDeniedError",
    "Phase",
    "PromptFilteredError",
    "ProviderError",
    "RateLimitError",
    "ResponseFilteredError",
    "ResponseTooLargeError",
    "RetryBudgetExhaustedError",
    "ServerError",
    "StreamDecodeError",
    "StreamError",
    "StreamInterruptedError",
    "StreamStalledError",
    "StreamTruncatedError",
    "TransportError",
    "TransportKind",
    "UnexpectedRedirectError",
    "UnprocessableEntityError",
    "UnsupportedCapabilityError",
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
    """Base class of every error modelmix raises.

    Every error pickles with its attributes (a worker process can hand one back to its pool);
    the traceback and a ``__cause__`` that is not a modelmix error are not carried.
    """

    retryable: bool = False
    """Whether trying the same request again may succeed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.attempts: list[Attempt] = []

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as ``cls(*args)``, which cannot rebuild an error whose constructor
        # takes keyword-only context: a worker process that hit a 429 would then break its pool.
        # The error is rebuilt from its args and attributes instead, without calling __init__.
        # The traceback and a foreign __cause__ (an httpx error holding the request and its
        # headers) are left behind; a modelmix cause travels, as it is built without secrets.
        cause = self.__cause__ if isinstance(self.__cause__, ModelMixError) else None
        return (_restore_error, (type(self), self.args, dict(self.__dict__), cause))


def _restore_error(
    cls: type[ModelMixError], args: tuple[Any, ...], state: dict[str, Any], cause: ModelMixError | None
) -> ModelMixError:
    """Unpickle an error: the object as `cls.__new__` makes it, its attributes as they were."""
    error = cls.__new__(cls, *args)
    if not error.args and args:  # BaseException.__new__ keeps args; a custom __new__ may not
        error.args = args
    error.__dict__.update(state)
    if cause is not None:
        error.__cause__ = cause
    return error


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
    credential, a request header or a response body. Every subclass takes the same context
    keywords (`provider`, `model`, `status`, `request_id`, `host`, `url`, `retryable`,
    `retry_after`, `phase`, `code`, `error_type`), so an error is built once with all it needs to
    say. `url` is the address that was tried (``scheme://host:port/path``, never credentials or a
    query string), so two servers on one host can be told apart.
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
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
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
    """403: the credential is valid but may not use this model or resource.

    `key_hint` shows at most the last four characters of the key, to tell which key it was.
    """

    def __init__(self, message: str, *, key_hint: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.key_hint = key_hint


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
    """3xx: the endpoint redirected. modelmix never follows, so credentials never travel elsewhere.

    `location_host` is the host the server pointed to (None when its ``Location`` was not a valid
    URL). `status` is None when the HTTP client refused the redirect before its status was kept.
    """

    def __init__(
        self, message: str, *, status: int | None = None, location_host: str | None = None, **context: Any
    ) -> None:
        ProviderError.__init__(self, message, status=status, **context)
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
    """The server reported an error inside a stream that had started with HTTP 200.

    `mapped` is the typed error the report amounts to (a ``server_error`` event maps to a
    `ServerError`, and so on); unless given explicitly, `retryable` and `retry_after` are its own.
    """

    def __init__(self, message: str, *, mapped: ProviderError | None = None, **context: Any) -> None:
        if mapped is not None:
            context.setdefault("retryable", mapped.retryable)
            context.setdefault("retry_after", mapped.retry_after)
        super().__init__(message, **context)
        self.mapped = mapped


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
        cost: Decimal | None = None,
        n_events: int = 0,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text
        self.partial_tool_calls = list(partial_tool_calls or [])
        self.usage = usage
        """Tokens the interrupted call consumed, when the server reported them before failing."""
        self.cost = cost
        """USD cost of `usage`, where the model's prices are known."""
        self.n_events = n_events


class ResponseFilteredError(ProviderError):
    """The answer was stopped by a content filter (``finish_reason == "content_filter"``).

    modelmix's providers return a cut answer instead of raising (the response's
    `content_filtered` is true and it keeps the text received); this class is for code that wants
    to treat a cut answer as a failure. `partial_text` holds what arrived.
    """

    def __init__(self, message: str, *, partial_text: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.partial_text = partial_text


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
        host: str | None = None,
    ) -> None:
        super().__init__(message)
        self.capability = capability
        self.param = param
        self.provider = provider
        self.model = model
        self.host = host


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


# Tracebacks print an exception's class by its module: let them say `modelmix.RateLimitError`,
# the name users import and catch, rather than this private module's path.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = "modelmix"
del _name, _value
