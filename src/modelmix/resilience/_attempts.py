"""Recording attempts and logging them: one line per attempt, retry and fallback.

Log lines name the model, host, status, phase and error class only: never a key, a header, a
body or the prompt (the prompt's first characters only with ``log_content=True``).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from .._exceptions import ModelMixError, ProviderError
from .._messages import MessagesInput, to_messages
from .._model import Model
from .._response import Attempt, ChatResponse, Usage

__all__ = ["attempt_record", "logger", "prompt_preview", "spent_by"]

logger = logging.getLogger("modelmix")


def _host_of(model: Model) -> str | None:
    host: Any = getattr(model, "host", None)
    return host if isinstance(host, str) else None


def attempt_record(
    model: Model,
    *,
    error: BaseException | None,
    elapsed: float,
    retry_no: int,
    response: ChatResponse | None = None,
    request_id: str | None = None,
    phase: str | None = None,
) -> Attempt:
    status = None
    if isinstance(error, ProviderError):
        status = error.status
        phase = error.phase or phase
        request_id = request_id or error.request_id
    elif error is not None:
        phase = phase or "local"
    usage, cost = spent_by(error) if response is None else (response.usage, response.cost)
    if response is not None:
        request_id = request_id or response.request_id
    return Attempt(
        model=model.name,
        provider=model.provider,
        host=_host_of(model),
        status=status,
        phase=phase,
        elapsed=round(elapsed, 6),
        retry_no=retry_no,
        request_id=request_id,
        error=None if error is None else type(error).__name__,
        usage=usage,
        cost=cost,
    )


def spent_by(error: BaseException | None) -> tuple[Usage | None, Decimal | None]:
    """What a failed attempt consumed, where its error knows: an answer rejected after it arrived
    (invalid structured output) or a stream cut after the server reported usage."""
    usage = getattr(error, "usage", None)
    if not isinstance(usage, Usage):
        return None, None
    cost = getattr(error, "cost", None)
    return usage, cost if isinstance(cost, Decimal) else None


def log_attempt(attempt: Attempt, *, total: int | None = None) -> None:
    if attempt.error is None:
        # Every successful call passes here: build nothing unless DEBUG is on.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("attempt %d %s answered in %.3f s", attempt.retry_no + 1, _where(attempt), attempt.elapsed)
        return
    where = _where(attempt)
    status = f" status {attempt.status}" if attempt.status is not None else ""
    logger.info(
        "attempt %d %s failed after %.3f s: %s%s (phase %s)",
        attempt.retry_no + 1,
        where,
        attempt.elapsed,
        attempt.error,
        status,
        attempt.phase,
    )


def _where(attempt: Attempt) -> str:
    return f"{attempt.provider}:{attempt.model}" + (f" at {attempt.host}" if attempt.host else "")


def prompt_preview(messages: MessagesInput, limit: int = 200) -> str:
    """The last message's text, shortened, for opt-in content logging."""
    try:
        converted = to_messages(messages)
    except ModelMixError:
        return "<unreadable prompt>"
    text = converted[-1].text if converted else ""
    return text if len(text) <= limit else text[:limit] + "…"
