"""Structured logs: one line per attempt and one per call, with stable keys and no secrets.

Each record's message is ``key=value`` pairs (easy to grep) and the same fields are on the record
as ``record.modelmix`` (a dict) for JSON formatters. Fields come from the call hooks' records, which
hold no key, header, body or prompt: the error is named by class, status and phase only.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from .._exceptions import ProviderError
from .._observe import AttemptInfo, CallInfo, Hooks, add_hooks

__all__ = ["CallLogger", "log_calls"]

_ids = itertools.count(1)


class CallLogger(Hooks):
    """Logs each attempt (DEBUG when it answered, INFO when it did not) and each call (INFO)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("modelmix.calls")

    def call_started(self, call: CallInfo) -> None:
        call.scratch[self] = next(_ids)

    def attempt_finished(self, attempt: AttemptInfo) -> None:
        level = logging.DEBUG if attempt.outcome == "ok" else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        error = attempt.error
        fields: dict[str, Any] = {
            "event": "attempt",
            "call": attempt.call.scratch.get(self),
            "operation": attempt.call.operation,
            "provider": attempt.provider,
            "model": attempt.model,
            "server": attempt.host,
            "position": attempt.position,
            "retry": attempt.retry_no,
            "outcome": attempt.outcome,
            "error_type": attempt.error_type if attempt.outcome == "error" else None,
            "status": error.status if isinstance(error, ProviderError) else None,
            "phase": error.phase if isinstance(error, ProviderError) else None,
            "duration_s": _seconds(attempt.duration),
            "ttft_s": _seconds(attempt.time_to_first_chunk),
            "input_tokens": attempt.usage.input_tokens if attempt.usage else None,
            "output_tokens": attempt.usage.output_tokens if attempt.usage else None,
            "cost_usd": str(attempt.cost) if attempt.cost is not None else None,
            "request_id": attempt.request_id,
            "response_model": attempt.response_model,
            "finish_reason": attempt.finish_reason,
        }
        self._log(level, fields)

    def call_finished(self, call: CallInfo) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        answered = call.answered_by
        usage = call.usage
        cost = call.cost
        fields: dict[str, Any] = {
            "event": "call",
            "call": call.scratch.get(self),
            "operation": call.operation,
            "provider": call.provider,
            "model": call.model,
            "streaming": call.streaming,
            "outcome": call.outcome,
            "error_type": call.error_type if call.outcome == "error" else None,
            "attempts": len(call.attempts),
            "answered_by": f"{answered.provider}:{answered.model}" if answered else None,
            "position": answered.position if answered else None,
            "duration_s": _seconds(call.duration),
            "ttft_s": _seconds(call.time_to_first_chunk),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "cost_usd": str(cost) if cost is not None else None,
            "finish_reasons": ",".join(call.finish_reasons) or None,
        }
        self._log(logging.INFO, fields)

    def _log(self, level: int, fields: dict[str, Any]) -> None:
        message = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
        self.logger.log(level, "%s", message, extra={"modelmix": fields})


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def log_calls(logger: logging.Logger | None = None) -> CallLogger:
    """Log one structured line per attempt and per call to `logger` (``modelmix.calls`` by
    default) from now on; ``remove_hooks(the returned logger)`` stops it."""
    hooks = CallLogger(logger)
    add_hooks(hooks)
    return hooks
