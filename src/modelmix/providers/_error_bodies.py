"""Turning the many error-body shapes of LLM servers into typed errors (sans-I/O).

Shapes met in recordings: OpenAI ``{"error": {message, type, param, code}}`` (code a string, an
int on OpenRouter); Azure ``{"error": {code, message, innererror}}`` and ``{"statusCode",
"message"}``; FastAPI ``{"detail": ...}``; Ollama ``{"error": "text"}``; llama.cpp
``{"error": {"type": "exceed_context_size_error", "n_ctx", "n_prompt_tokens"}}``; plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import (
    APIStatusError,
    ContentFilterError,
    ContextLengthExceededError,
    status_error,
)

__all__ = ["ErrorInfo", "error_from_body", "error_info", "typed_error"]

_MAX_MESSAGE = 1000

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
            code = data.get("code")
            return ErrorInfo(
                message=_text(data.get("message")) or fallback, code=None if code is None else str(code), raw=data
            )
    if isinstance(data, str) and data.strip():
        return ErrorInfo(message=data.strip()[:_MAX_MESSAGE])
    return ErrorInfo(message=fallback)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:_MAX_MESSAGE]
    return json.dumps(value, ensure_ascii=False)[:_MAX_MESSAGE]


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _ints(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d{3,}", text)]


def typed_error(status: int, info: ErrorInfo, headers: Mapping[str, str]) -> APIStatusError:
    """The most specific error for this status and body."""
    lowered = f"{info.code or ''} {info.type or ''} {info.message}".lower()
    common: dict[str, Any] = {"status": status, "code": info.code, "error_type": info.type}
    if info.code == "content_filter" or (info.raw is not None and _has_filter_result(info.raw)):
        return ContentFilterError(info.message, categories=_filter_categories(info.raw), **common)
    if status in (400, 413, 422, 500) and any(marker in lowered for marker in _CONTEXT_MARKERS):
        limit, requested = _context_numbers(info)
        return ContextLengthExceededError(info.message, limit=limit, requested=requested, **common)
    return status_error(status, info.message, headers=headers, code=info.code, error_type=info.type, param=info.param)


def error_from_body(status: int, headers: Mapping[str, str], body: bytes) -> APIStatusError:
    """Decode an error response body (JSON or text) into a typed error."""
    fallback = f"HTTP {status}"
    try:
        data: Any = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = body.decode("utf-8", errors="replace")
    error = typed_error(status, error_info(data, fallback=fallback), headers)
    if error.retry_after is None:
        from .._exceptions import parse_retry_after

        error.retry_after = parse_retry_after(headers)
    return error


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
