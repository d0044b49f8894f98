"""The fault table, pinned: every row, and which row each fault of FAULTS.md §10 lands on."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import modelmix as mm
from modelmix._exceptions import (
    InBandStreamError,
    PromptFilteredError,
    ResponseFilteredError,
    UnsupportedCapabilityError,
    status_error,
)
from modelmix._preflight import ContextWindowExceededError
from modelmix.resilience import RetryPolicy, classify, retries_allowed, should_fall_back
from modelmix.resilience._faults import FAULTS, fault_kind
from modelmix.resilience._ledger import BudgetExceededError

# kind: (retries, breaker outcome, falls back, wait rule)
EXPECTED = {
    "rate_limited": ("policy", "cooldown", "yes", "backoff"),
    "server_error": ("policy", "failure", "yes", "backoff"),
    "gateway_timeout": ("once", "failure", "yes", "backoff"),
    "conflict": ("policy", "failure", "yes", "backoff"),
    "unauthorized": ("if_marked", "misconfigured", "yes", "none"),
    "not_found": ("if_marked", "misconfigured", "yes", "none"),
    "context_too_long": ("if_marked", "ignored", "larger_window", "none"),
    "prompt_filtered": ("if_marked", "ignored", "opt_in", "none"),
    "unsupported_param": ("if_marked", "ignored", "yes", "none"),
    "unprocessable": ("if_marked", "ignored", "no", "none"),
    "bad_request": ("if_marked", "ignored", "no", "none"),
    "redirect": ("if_marked", "ignored", "yes", "none"),
    "client_error": ("policy", "ignored", "yes", "backoff"),
    "connect_failed": ("once", "failure", "yes", "connect_pause"),
    "reset_before_headers": ("once", "failure", "yes", "immediate_then_backoff"),
    "no_first_byte": ("once", "failure", "yes", "backoff"),
    "sent_no_answer": ("once", "failure", "yes", "backoff"),
    "tls": ("if_marked", "misconfigured", "yes", "none"),
    "pool_timeout": ("none", "ignored", "yes", "none"),
    "transport": ("policy", "failure", "yes", "backoff"),
    "stream_broken": ("once", "failure", "yes", "backoff"),
    "stream_interrupted": ("none", "failure", "no", "none"),
    "response_too_large": ("if_marked", "failure", "yes", "none"),
    "response_filtered": ("if_marked", "ignored", "no", "none"),
    "provider_error": ("policy", "failure", "yes", "backoff"),
    "invalid_output": ("none", "ignored", "yes", "none"),
    "output_refused": ("none", "ignored", "no", "none"),
    "unsupported_capability": ("none", "ignored", "yes", "none"),
    "context_wont_fit": ("none", "ignored", "larger_window", "none"),
    "budget_exceeded": ("none", "ignored", "yes", "none"),
    "client_rate_limited": ("none", "ignored", "yes", "none"),
    "retry_budget_exhausted": ("none", "ignored", "yes", "none"),
    "circuit_open": ("none", "ignored", "yes", "none"),
    "deadline": ("none", "ignored", "no", "none"),
    "configuration": ("none", "ignored", "no", "none"),
    "chain_failed": ("none", "ignored", "no", "none"),
    "other": ("none", "ignored", "no", "none"),
    "not_ours": ("none", "ignored", "no", "none"),
}


def test_every_row_of_the_table() -> None:
    assert {kind: (f.retries, f.breaker, f.fall_back, f.wait) for kind, f in FAULTS.items()} == EXPECTED


def _transport(kind: str, phase: str | None = None) -> mm.TransportError:
    return mm.TransportError("x", kind=kind, phase=phase)  # type: ignore[arg-type]


def _too_long_counted() -> ContextWindowExceededError:
    return ContextWindowExceededError(
        "x", limit=10, requested=11, input_tokens=6, output_tokens=5, exact=True, method="tiktoken"
    )


def _over_budget() -> BudgetExceededError:
    zero = Decimal(0)
    return BudgetExceededError("x", max_usd=zero, spent=zero, reserved=zero, needed=Decimal(1))


# FAULTS.md row → an error it produces → the table's kind, retries (policy max 2), CB, falls back.
MATRIX = [
    (1, mm.RateLimitError("x", status=429, retry_after=2.0), "rate_limited", 2, "cooldown", True),
    (4, status_error(500, "x"), "server_error", 2, "failure", True),
    (5, status_error(502, "x"), "server_error", 2, "failure", True),
    (6, status_error(503, "x"), "server_error", 2, "failure", True),
    (7, status_error(504, "x"), "gateway_timeout", 1, "failure", True),
    (8, status_error(408, "x"), "server_error", 2, "failure", True),
    (9, _transport("connect"), "connect_failed", 1, "failure", True),
    (10, _transport("dns"), "connect_failed", 1, "failure", True),
    (11, _transport("connect_timeout"), "transport", 2, "failure", True),
    (12, _transport("read_timeout", "sent_no_response"), "no_first_byte", 1, "failure", True),
    (13, _transport("protocol", "sent_no_response"), "reset_before_headers", 1, "failure", True),
    (14, status_error(401, "x"), "unauthorized", 0, "misconfigured", True),
    (14, status_error(403, "x"), "unauthorized", 0, "misconfigured", True),
    (15, status_error(404, "x"), "not_found", 0, "misconfigured", True),
    (16, mm.ContextLengthExceededError("x", status=400), "context_too_long", 0, "ignored", True),
    (17, PromptFilteredError("x", status=400), "prompt_filtered", 0, "ignored", False),
    (18, mm.UnprocessableEntityError("x", status=422, param="seed"), "unsupported_param", 0, "ignored", True),
    (18, mm.UnprocessableEntityError("x", status=422), "unprocessable", 0, "ignored", False),
    (19, _transport("tls"), "tls", 0, "misconfigured", True),
    (20, mm.UnexpectedRedirectError("x", status=302), "redirect", 0, "ignored", True),
    (21, _transport("protocol", "pre_commit_stream"), "sent_no_answer", 1, "failure", True),
    (21, mm.StreamInterruptedError("x"), "stream_interrupted", 0, "failure", False),
    (22, mm.StreamTruncatedError("x"), "stream_broken", 1, "failure", True),
    (23, mm.ResponseTooLargeError("x", limit=1), "response_too_large", 0, "failure", True),
    (24, mm.StreamDecodeError("x"), "stream_broken", 1, "failure", True),
    (25, InBandStreamError("x", mapped=status_error(500, "x")), "server_error", 2, "failure", True),
    (25, InBandStreamError("x", mapped=status_error(400, "x")), "bad_request", 0, "ignored", False),
    (26, ResponseFilteredError("x"), "response_filtered", 0, "ignored", False),
    (27, mm.StreamStalledError("x"), "stream_broken", 1, "failure", True),
    (27, _transport("ttft_timeout", "pre_commit_stream"), "no_first_byte", 1, "failure", True),
    (28, asyncio.CancelledError(), "not_ours", 0, "ignored", False),
    (30, _transport("pool_timeout"), "pool_timeout", 0, "ignored", True),
    (31, mm.CircuitOpenError("x"), "circuit_open", 0, "ignored", True),
    (32, mm.DeadlineExceededError("x"), "deadline", 0, "ignored", False),
    (0, UnsupportedCapabilityError("x", capability="tools"), "unsupported_capability", 0, "ignored", True),
    (0, mm.RetryBudgetExhaustedError("x"), "retry_budget_exhausted", 0, "ignored", True),
    (0, _too_long_counted(), "context_wont_fit", 0, "ignored", True),
    (0, _over_budget(), "budget_exceeded", 0, "ignored", True),
    (0, mm.ClientRateLimitError("x", scope="s", limit="tpm"), "client_rate_limited", 0, "ignored", True),
    (0, mm.ConfigurationError("x"), "configuration", 0, "ignored", False),
    (0, mm.OutputValidationError("x", raw_text="{}", strategy="native"), "invalid_output", 0, "ignored", True),
    (0, mm.OutputRefusedError("x", refusal="no"), "output_refused", 0, "ignored", False),
]


@pytest.mark.parametrize(("row", "error", "kind", "retries", "outcome", "falls_back"), MATRIX)
def test_each_matrix_row_lands_on_its_table_row(
    row: int, error: BaseException, kind: str, retries: int, outcome: str, falls_back: bool
) -> None:
    assert fault_kind(error) == kind
    assert retries_allowed(error, RetryPolicy(max_retries=2)) == retries
    assert classify(error) == outcome
    assert should_fall_back(error) is falls_back


def test_the_server_marking_overrides_the_status() -> None:
    bad = status_error(400, "x", headers={"x-should-retry": "true"})
    assert retries_allowed(bad, RetryPolicy(max_retries=2)) == 2
    down = status_error(500, "x", headers={"x-should-retry": "false"})
    assert retries_allowed(down, RetryPolicy(max_retries=2)) == 0
    assert should_fall_back(PromptFilteredError("x", status=400), on_content_filter=True)
