"""The fault table: what each kind of failure means for retry, the circuit breaker and fallback.

One classifier names a failure's kind (most specific first); one table says, per kind, how many
retries it deserves on the same deployment, what the endpoint's breaker records, whether a chain
moves on, and which wait rule paces a retry. Retrying, the breaker and fallback all read this
table, so they can never disagree about a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .. import _exceptions as errors
from .._preflight import ContextWindowExceededError
from .._structured import OutputRefusedError, OutputValidationError
from ._ledger import BudgetExceededError
from ._limit_error import ClientRateLimitError

__all__ = ["FAULTS", "Fault", "fault_kind", "fault_of"]

Retries = Literal["none", "once", "policy", "if_marked"]
"""``policy``: up to the policy's ``max_retries``; ``once``: at most one; ``if_marked``: none unless
the server marked this answer retryable (``x-should-retry: true``), then up to the policy. An
error whose ``retryable`` flag is false (a server's ``x-should-retry: false``) is never retried."""
BreakerOutcome = Literal["success", "failure", "cooldown", "misconfigured", "ignored"]
FallBack = Literal["yes", "no", "larger_window", "opt_in"]
"""``larger_window``: only to models with a larger context window; ``opt_in``: only when asked."""
WaitRule = Literal["none", "backoff", "connect_pause", "immediate_then_backoff"]
"""``backoff``: the server's hint if any, else full-jitter backoff; ``connect_pause``: a short
fixed pause (the request was never sent); ``immediate_then_backoff``: the first retry at once."""


@dataclass(frozen=True)
class Fault:
    """One row of the fault table."""

    retries: Retries
    breaker: BreakerOutcome
    fall_back: FallBack
    wait: WaitRule


FAULTS: dict[str, Fault] = {
    # The server answered with an error status.
    "rate_limited": Fault("policy", "cooldown", "yes", "backoff"),
    "server_error": Fault("policy", "failure", "yes", "backoff"),
    "gateway_timeout": Fault("once", "failure", "yes", "backoff"),  # each 504 burned a whole gateway timeout
    "conflict": Fault("policy", "failure", "yes", "backoff"),
    "unauthorized": Fault("if_marked", "misconfigured", "yes", "none"),
    "not_found": Fault("if_marked", "misconfigured", "yes", "none"),
    "context_too_long": Fault("if_marked", "ignored", "larger_window", "none"),
    "prompt_filtered": Fault("if_marked", "ignored", "opt_in", "none"),  # don't route around a safety policy
    "unsupported_param": Fault("if_marked", "ignored", "yes", "none"),  # another model may support it
    "unprocessable": Fault("if_marked", "ignored", "no", "none"),
    "bad_request": Fault("if_marked", "ignored", "no", "none"),
    "redirect": Fault("if_marked", "ignored", "yes", "none"),
    "client_error": Fault("policy", "ignored", "yes", "backoff"),
    # The network path failed.
    "connect_failed": Fault("once", "failure", "yes", "connect_pause"),  # refused or DNS: never sent
    "reset_before_headers": Fault("once", "failure", "yes", "immediate_then_backoff"),  # likely stale keep-alive
    "no_first_byte": Fault("once", "failure", "yes", "backoff"),  # may be generating (and billing)
    "sent_no_answer": Fault("once", "failure", "yes", "backoff"),
    "tls": Fault("if_marked", "misconfigured", "yes", "none"),
    "pool_timeout": Fault("none", "ignored", "yes", "none"),  # local saturation, not the endpoint's fault
    "transport": Fault("policy", "failure", "yes", "backoff"),
    # A stream failed before its commit point (after it: stream_interrupted).
    "stream_broken": Fault("once", "failure", "yes", "backoff"),
    "stream_interrupted": Fault("none", "failure", "no", "none"),
    "response_too_large": Fault("if_marked", "failure", "yes", "none"),
    "response_filtered": Fault("if_marked", "ignored", "no", "none"),
    "provider_error": Fault("policy", "failure", "yes", "backoff"),
    # The answer arrived but is not the structured output asked for (re-asks happen before this).
    "invalid_output": Fault("none", "ignored", "yes", "none"),  # another model may get it right
    "output_refused": Fault("none", "ignored", "no", "none"),  # don't route around a refusal
    # Decided locally, before or instead of a request.
    "unsupported_capability": Fault("none", "ignored", "yes", "none"),
    "context_wont_fit": Fault("none", "ignored", "larger_window", "none"),  # counted: nothing sent
    "budget_exceeded": Fault("none", "ignored", "yes", "none"),  # a cheaper model may fit what is left
    "client_rate_limited": Fault("none", "ignored", "yes", "none"),  # our own limit, not the endpoint's health
    "retry_budget_exhausted": Fault("none", "ignored", "yes", "none"),
    "circuit_open": Fault("none", "ignored", "yes", "none"),
    "deadline": Fault("none", "ignored", "no", "none"),
    "configuration": Fault("none", "ignored", "no", "none"),
    "chain_failed": Fault("none", "ignored", "no", "none"),
    "other": Fault("none", "ignored", "no", "none"),
    "not_ours": Fault("none", "ignored", "no", "none"),  # cancellation and programming errors
}

_CLASS_KINDS: tuple[tuple[type[errors.ModelMixError], str], ...] = (
    # Subclasses before their bases: the most specific class wins.
    (errors.UnsupportedCapabilityError, "unsupported_capability"),
    (ContextWindowExceededError, "context_wont_fit"),
    (BudgetExceededError, "budget_exceeded"),
    (ClientRateLimitError, "client_rate_limited"),
    (errors.RetryBudgetExhaustedError, "retry_budget_exhausted"),
    (errors.CircuitOpenError, "circuit_open"),
    (errors.DeadlineExceededError, "deadline"),
    (errors.ConfigurationError, "configuration"),
    (errors.AllModelsFailedError, "chain_failed"),
    (errors.RateLimitError, "rate_limited"),
    (errors.AuthenticationError, "unauthorized"),
    (errors.PermissionDeniedError, "unauthorized"),
    (errors.NotFoundError, "not_found"),
    (errors.ContextLengthExceededError, "context_too_long"),
    (errors.PromptFilteredError, "prompt_filtered"),
    (errors.BadRequestError, "bad_request"),
    (errors.ConflictError, "conflict"),
    (errors.UnexpectedRedirectError, "redirect"),
    (OutputRefusedError, "output_refused"),
    (OutputValidationError, "invalid_output"),
)


def _transport_kind(error: errors.TransportError) -> str:
    if error.kind == "tls":
        return "tls"
    if error.kind == "pool_timeout":
        return "pool_timeout"
    if error.kind in ("connect", "dns"):
        return "connect_failed"
    if error.kind in ("read_timeout", "ttft_timeout"):
        return "no_first_byte"
    if error.phase == "sent_no_response":
        return "reset_before_headers" if error.kind in ("protocol", "read") else "sent_no_answer"
    if error.phase == "pre_commit_stream":
        return "sent_no_answer"
    return "transport"


def _status_kind(error: errors.APIStatusError) -> str:
    if isinstance(error, errors.UnprocessableEntityError):
        # A parameter this model doesn't support is a capability gap another model may not have.
        supported = error.param is not None or "support" in error.message.lower()
        return "unsupported_param" if supported else "unprocessable"
    if isinstance(error, errors.ServerError):
        return "gateway_timeout" if error.status == 504 else "server_error"
    if error.status is not None and 400 <= error.status < 500:
        return "client_error"
    return "provider_error"


def fault_kind(error: BaseException) -> str:
    """The fault table's key for `error`."""
    if not isinstance(error, errors.ModelMixError):
        return "not_ours"
    if isinstance(error, errors.InBandStreamError) and error.mapped is not None:
        return fault_kind(error.mapped)  # an error event inside a stream means what its status means
    for cls, kind in _CLASS_KINDS:
        if isinstance(error, cls):
            return kind
    if not isinstance(error, errors.ProviderError):
        return "other"
    if isinstance(error, errors.TransportError):
        return _transport_kind(error)
    if isinstance(error, errors.APIStatusError):
        return _status_kind(error)
    if isinstance(error, errors.StreamInterruptedError):
        return "stream_interrupted"
    if isinstance(error, (errors.StreamTruncatedError, errors.StreamDecodeError, errors.StreamStalledError)):
        return "stream_broken"
    if isinstance(error, errors.ResponseFilteredError):
        return "response_filtered"
    if isinstance(error, errors.ResponseTooLargeError):
        return "response_too_large"
    return "provider_error"


def fault_of(error: BaseException) -> Fault:
    """The fault table's row for `error`."""
    return FAULTS[fault_kind(error)]
