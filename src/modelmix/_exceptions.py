"""The modelmix error tree.

Every failure a caller can see is a `ModelMixError`. Configuration mistakes are kept apart from
failures of a provider, and provider failures are typed by cause so that retry and fallback
decisions never parse message strings::

    ModelMixError
    ├── ConfigurationError                 bad arguments / environment; fix the call, don't retry
    │   └── MissingDependencyError         an optional extra is not installed
    ├── UnsupportedCapabilityError         the model cannot do what was asked; nothing was sent
    ├── ProviderError                      the provider (or the way to it) failed
    │   ├── TransportError                 connect / dns / tls / timeout / protocol (kind=...)
    │   ├── APIStatusError                 the server answered with an HTTP error status
    │   │   ├── BadRequestError            400
    │   │   │   ├── ContextLengthExceededError
    │   │   │   │   └── ContextWindowExceededError  counted before sending; nothing was sent
    │   │   │   └── PromptFilteredError    the prompt was rejected by a content filter
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
    │   │   └── InBandStreamError          the server sent an error inside a 200 stream
    │   ├── ResponseFilteredError          the answer was cut by a content filter
    │   ├── ResponseTooLargeError          a size cap was hit
    │   ├── ToolArgumentsError             a tool call's arguments do not fit the tool (raw_arguments)
    │   └── OutputError                    output=...: no valid structured output (usage, cost)
    │       ├── OutputValidationError      not JSON, or it does not fit the type (raw_text, errors, enforced)
    │       └── OutputRefusedError         the model refused (refusal)
    ├── AllModelsFailedError               every model of a fallback chain failed (also an ExceptionGroup)
    ├── DeadlineExceededError
    ├── CircuitOpenError
    ├── RetryBudgetExhaustedError
    ├── BudgetExceededError                mm.budget refused a call before sending (spent, left, needed)
    ├── ClientRateLimitError               mm.rate_limit held a call back past its deadline (limit, retry_after)
    └── ToolLoopLimitError                 run_tools: the model still calls tools after max_steps

`asyncio.CancelledError` and other cancellation exceptions are never wrapped.

Three names from 0.1.0 remain as aliases of the same classes for one release:
``ContentFilterError`` (now `PromptFilteredError`), ``ContentFilteredError`` (now
`ResponseFilteredError`) and ``StreamErrorEvent`` (now `InBandStreamError`). Reading them from
`modelmix` warns; the plain aliases here are for modelmix's own modules.

The classes live in `_error_tree`; server hints, the HTTP status table (`status_error`) and the one
place where httpx exceptions become modelmix errors (`translate_httpx_errors`) in `_error_mapping`.
Import them all from here.
"""

from ._error_mapping import (
    NOT_RETRYABLE_STATUSES,
    STATUS_ERROR_CLASSES,
    error_class_for_status,
    parse_retry_after,
    parse_should_retry,
    public_url,
    status_error,
    translate_httpx_errors,
)
from ._error_mapping import (
    _transport_error_for as _transport_error_for,  # for the mapping's edge-case tests
)

# The whole tree, by its own `__all__`: listing ~30 classes again here would only let them drift.
from ._error_tree import *  # noqa: F403
from ._error_tree import InBandStreamError, PromptFilteredError, ResponseFilteredError
from ._error_tree import __all__ as _TREE_NAMES

ContentFilterError = PromptFilteredError
"""Deprecated name of `PromptFilteredError` (kept for one release)."""
ContentFilteredError = ResponseFilteredError
"""Deprecated name of `ResponseFilteredError` (kept for one release)."""
StreamErrorEvent = InBandStreamError
"""Deprecated name of `InBandStreamError` (kept for one release)."""

DEPRECATED_NAMES: dict[str, str] = {
    "ContentFilterError": "PromptFilteredError",
    "ContentFilteredError": "ResponseFilteredError",
    "StreamErrorEvent": "InBandStreamError",
}
"""Old public name → its replacement; `modelmix.__getattr__` warns when an old one is read."""

__all__ = [
    *_TREE_NAMES,
    "DEPRECATED_NAMES",
    "NOT_RETRYABLE_STATUSES",
    "STATUS_ERROR_CLASSES",
    "ContentFilterError",
    "ContentFilteredError",
    "StreamErrorEvent",
    "error_class_for_status",
    "parse_retry_after",
    "parse_should_retry",
    "public_url",
    "status_error",
    "translate_httpx_errors",
]
