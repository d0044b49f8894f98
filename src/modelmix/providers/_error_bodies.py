"""Turning the many error-body shapes of LLM servers into typed errors (sans-I/O).

Shapes met in recordings: OpenAI ``{"error": {message, type, param, code}}`` (code a string, an
int on OpenRouter); Azure ``{"error": {code, message, innererror}}`` and ``{"statusCode",
"message"}``; FastAPI ``{"detail": ...}``; Ollama ``{"error": "text"}``; llama.cpp
``{"error": {"type": "exceed_context_size_error", "n_ctx", "n_prompt_tokens"}}``; Databricks
``{"error_code", "message"}``; plain text.

This is the one body classifier: every codec builds its errors here, complete before they leave
(retry hints from ``retry-after`` or ``x-ratelimit-reset-*``, a 503 while a model loads, a 409
that is a transient lock on OpenAI, an error body sent with HTTP 200).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._codec import NO_CONTEXT, ErrorContext, Reply
from .._exceptions import (
    APIStatusError,
    ContextLengthExceededError,
    PromptFilteredError,
    parse_retry_after,
    status_error,
)

__all__ = [
    "ErrorInfo",
    "error_from_body",
    "error_in_ok_body",
    "error_info",
    "rate_limit_reset",
    "typed_error",
]

_MAX_MESSAGE = 1000
"""How much of a server's error message an error keeps (after credentials are removed)."""
_MAX_RAW_MESSAGE = 64 * 1024
"""How much of it is read at all: enough to redact an echoed key that crosses the cut above."""
_MAX_FIELD = 200
"""How much of a body's ``code``, ``type`` or ``param`` an error keeps."""

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "exceeds the available context size",
    "exceed_context_size",
    "context window",
    "too many tokens",
    "prompt is too long",
)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None
    raw: Mapping[str, Any] | None = None


def error_info(data: Any, *, fallback: str) -> ErrorInfo:
    """Extract message/code/type/param from a decoded error body of any known shape."""
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            return ErrorInfo(
                message=_text(error.get("message")) or fallback,
                code=None if code is None else str(code),
                type=_opt_str(error.get("type")),
                param=_opt_str(error.get("param")),
                raw=error,
            )
        if isinstance(error, str):
            return ErrorInfo(message=error or fallback, raw=data)
        detail = data.get("detail")
        if detail is not None:
            return ErrorInfo(message=_text(detail) or fallback, raw=data)
        if "message" in data:
            # Databricks (and other Databricks REST APIs) name the code "error_code".
            code = data.get("code", data.get("error_code"))
            return ErrorInfo(
                message=_text(data.get("message")) or fallback, code=None if code is None else str(code), raw=data
            )
    if isinstance(data, str) and data.strip():
        return ErrorInfo(message=data.strip()[:_MAX_RAW_MESSAGE])
    return ErrorInfo(message=fallback)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:_MAX_RAW_MESSAGE]
    return json.dumps(value, ensure_ascii=False)[:_MAX_RAW_MESSAGE]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _ints(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d{3,}", text)]


def typed_error(
    status: int, info: ErrorInfo, headers: Mapping[str, str], context: ErrorContext = NO_CONTEXT
) -> APIStatusError:
    """The most specific error for this status and body, complete with `context`."""
    lowered = f"{info.code or ''} {info.type or ''} {info.message}".lower()
    # Redacted before it is cut, so an echoed key crossing the cut leaves nothing behind; the
    # code, type and param fields are the server's words too and may echo a key as well.
    message = context.redact(info.message, limit=_MAX_MESSAGE)
    info = dataclasses.replace(
        info,
        code=context.redact_optional(info.code, limit=_MAX_FIELD),
        type=context.redact_optional(info.type, limit=_MAX_FIELD),
        param=context.redact_optional(info.param, limit=_MAX_FIELD),
    )
    where = context.fields(status)
    common: dict[str, Any] = {"status": status, "code": info.code, "error_type": info.type}
    if info.code == "content_filter" or (info.raw is not None and _has_filter_result(info.raw)):
        where.pop("key_hint", None)
        return PromptFilteredError(message, categories=_filter_categories(info.raw), **common, **where)
    if status in (400, 413, 422, 500) and any(marker in lowered for marker in _CONTEXT_MARKERS):
        limit, requested = _context_numbers(info)
        return ContextLengthExceededError(message, limit=limit, requested=requested, **common, **where)
    return status_error(
        status, message, headers=headers, code=info.code, error_type=info.type, param=info.param, **where
    )


def error_from_body(body: bytes, reply: Reply) -> APIStatusError:
    """Decode an error response body (JSON or text) into a typed error, complete with the
    reply's context. A 409 is retryable where the profile says it is a transient lock (OpenAI)
    unless the server says otherwise with ``x-should-retry``."""
    status, headers, context = reply.status, reply.headers, reply.context
    retry_conflict = reply.profile is not None and reply.profile.retry_conflict
    fallback = f"HTTP {status}"
    try:
        data: Any = json.loads(body) if body else None
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, huge integers, deep nesting
        data = body.decode("utf-8", errors="replace")
    info = error_info(data, fallback=fallback)
    loading = status == 503 and "loading" in info.message.lower()
    if loading:
        # llama.cpp answers 503 {"error": {"message": "Loading model"}} until the weights are in memory.
        info = dataclasses.replace(
            info, message=f"{info.message}: the server is still loading the model; retry in a few seconds"
        )
    error = typed_error(status, info, headers, context)
    # Hints read from the headers and the body are settled here, before the error leaves.
    if error.retry_after is None:
        error.retry_after = parse_retry_after(headers)
    if error.retry_after is None and status == 429:
        error.retry_after = rate_limit_reset(headers)
    if loading:
        error.retryable = True
        error.retry_after = error.retry_after or 1.0
    if status == 409 and retry_conflict and "x-should-retry" not in headers:
        error.retryable = True
    if status == 500 and _rejected_parameters(info.message):
        # llama-cpp-python's server validates requests with pydantic and answers a bad parameter
        # with a 500: the request is at fault, so sending it again would only repeat the answer.
        error.retryable = False
    return error


def error_in_ok_body(data: Any, reply: Reply, *, fallback: str) -> APIStatusError:
    """The error an HTTP-200 body describes (LM Studio, Azure gateways, proxies). The status it
    deserved decides retrying: the one the body states, else one read from its message."""
    status, headers, context = reply.status, reply.headers, reply.context
    info = error_info(data, fallback=fallback)
    raw_error = data.get("error") if isinstance(data, Mapping) else None
    stated = raw_error.get("status") if isinstance(raw_error, Mapping) else None
    if isinstance(stated, int) and stated >= 400:
        effective = stated
    elif status >= 400:
        effective = status
    else:
        effective = _status_from_text(info.message) if raw_error else 500
    return typed_error(effective, info, headers, context)


def _status_from_text(message: str) -> int:
    lowered = message.lower()
    if "context" in lowered and ("length" in lowered or "window" in lowered or "size" in lowered):
        return 400
    if "not found" in lowered or "no models loaded" in lowered or "not loaded" in lowered:
        return 404
    if "rate limit" in lowered or "too many requests" in lowered:
        return 429
    return 500


def _context_numbers(info: ErrorInfo) -> tuple[int | None, int | None]:
    raw = info.raw or {}
    # llama.cpp: {"n_ctx": 512, "n_prompt_tokens": 900}
    limit = raw.get("n_ctx") if isinstance(raw.get("n_ctx"), int) else None
    requested = raw.get("n_prompt_tokens") if isinstance(raw.get("n_prompt_tokens"), int) else None
    if limit is None:
        # OpenAI/vLLM: "maximum context length is 8192 tokens. However, you requested 9000 tokens"
        numbers = _ints(info.message)
        if len(numbers) >= 2:
            limit, requested = numbers[0], numbers[1]
        elif numbers:
            limit = numbers[0]
    return limit, requested


def _has_filter_result(raw: Mapping[str, Any]) -> bool:
    inner = raw.get("innererror")
    return isinstance(inner, Mapping) and inner.get("code") == "ResponsibleAIPolicyViolation"


def _filter_categories(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """Categories that fired, with their severity, from Azure's innererror.content_filter_result."""
    if not raw:
        return {}
    inner = raw.get("innererror")
    results = inner.get("content_filter_result") if isinstance(inner, Mapping) else None
    if not isinstance(results, Mapping):
        return {}
    fired: dict[str, str] = {}
    for category, result in results.items():
        if isinstance(result, Mapping) and (result.get("filtered") or result.get("detected")):
            fired[str(category)] = str(result.get("severity", "detected"))
    return fired


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _duration(raw: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"250ms"`` or plain seconds → seconds."""
    text = raw.strip().lower()
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
            return None
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        value = sum(float(n) * scale[u] for n, u in parts)
    return value if value > 0 else None


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted limit resets, from ``x-ratelimit-reset-{requests,tokens}``.

    When a ``x-ratelimit-remaining-*`` header says which limit is at zero, that limit's reset is
    used; otherwise the longer of the two.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        raw = lowered.get(f"x-ratelimit-reset-{kind}")
        value = _duration(raw) if raw is not None else None
        if value is not None:
            resets[kind] = value
    if not resets:
        return None
    exhausted = [kind for kind in resets if lowered.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"]
    chosen = exhausted or list(resets)
    return max(resets[kind] for kind in chosen)


_VALIDATION_HEADER = re.compile(r"^\d+ validation errors?\b")
_VALIDATION_MARKERS = ("Input should be", "Field required", "Extra inputs are not permitted")


def _rejected_parameters(message: str) -> bool:
    """A 500 whose message is a pydantic validation report of the request's own parameters."""
    return bool(_VALIDATION_HEADER.match(message)) and any(marker in message for marker in _VALIDATION_MARKERS)
