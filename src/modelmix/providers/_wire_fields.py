"""Typed reads of a server's decoded JSON, and the errors a malformed answer becomes (sans-I/O).

A server's JSON is untrusted input: ``"model": 12345``, usage counts of ``"abc"`` or a tool-call
``"id": 7`` must not escape as a raw ``TypeError`` or pydantic ``ValidationError`` from deep
inside a codec, because raw exceptions skip retries and fallback. The codecs read every field
they use through these helpers, which raise `MalformedAnswer` naming the field; the codec's entry
point (one place per codec) turns it into a typed error that counts as the server's fault:

- a whole body: a `ProviderError` with ``code="malformed_response"``, retryable, that falls back
  exactly like a body that is not JSON at all;
- a stream event: a `StreamDecodeError` (before the commit point it is retried or falls back;
  after it the stream reports an interruption with the partial answer).

Both name the field, what it should hold and what was received, capped and with any credential
the request used removed.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from .._codec import ErrorContext, Reply
from .._exceptions import ProviderError, StreamDecodeError

__all__ = [
    "MALFORMED_CODE",
    "MalformedAnswer",
    "decoded_body",
    "decoded_event",
    "event_object",
    "int_field",
    "list_field",
    "loads_event",
    "loads_json",
    "malformed_body_error",
    "malformed_event_error",
    "mapping_field",
    "text_field",
]

_T = TypeVar("_T")

MALFORMED_CODE = "malformed_response"
_SHOWN_CHARS = 200
"""At most this much of a received value is quoted in an error message."""


class MalformedAnswer(Exception):
    """A field of a decoded answer does not have the type its protocol gives it.

    Internal to the codecs: it never reaches a caller (the codec's entry point converts it)."""

    def __init__(self, where: str, expected: str, received: object) -> None:
        super().__init__(where)
        self.where = where
        self.expected = expected
        self.received = received

    def describe(self, context: ErrorContext) -> str:
        return f"`{self.where}` should be {self.expected}, received {_shown(self.received, context)}"


def _shown(value: object, context: ErrorContext) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    # Redact before cutting, so that a cut can never leave part of a credential behind.
    text = context.redact(text)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def text_field(source: Mapping[str, Any], key: str, where: str) -> str | None:
    """``source[key]`` as a string; None when absent or null."""
    value = source.get(key)
    if value is None or type(value) is str:
        return value
    raise MalformedAnswer(where, "a string", value)


def int_field(source: Mapping[str, Any], key: str, where: str) -> int | None:
    """``source[key]`` as a whole number (``12.0`` accepted); None when absent or null."""
    value = source.get(key)
    if value is None or type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise MalformedAnswer(where, "a whole number", value)


def mapping_field(source: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    """``source[key]`` as a JSON object; None when absent or null."""
    value = source.get(key)
    if value is None or type(value) is dict or isinstance(value, Mapping):
        return value
    raise MalformedAnswer(where, "an object", value)


def list_field(source: Mapping[str, Any], key: str, where: str) -> list[Any] | None:
    """``source[key]`` as a JSON array; None when absent or null."""
    value = source.get(key)
    if value is None or type(value) is list:
        return value
    raise MalformedAnswer(where, "an array", value)


# The scanner `json.loads` itself uses (the C one); typeshed describes its argument as a scanner,
# the runtime takes the decoder whose settings it reads.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def loads_event(text: str) -> Any:
    """`json.loads` for one stream event, about twice as fast on the usual event: the C scanner
    runs directly, without `json.loads`' two whitespace scans and Python frames. Anything else
    (whitespace around the value, invalid JSON) takes `json.loads` itself, with its errors."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def loads_json(text: str | bytes) -> tuple[Any, bool]:
    """``(value, True)`` for valid JSON, ``(None, False)`` otherwise — including nesting too deep
    to decode and integers too long to convert, which `json.loads` reports with other exceptions
    than `JSONDecodeError`."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


def event_object(text: str, what: str, context: ErrorContext, offset: int) -> Mapping[str, Any]:
    """One stream event's JSON object; a `StreamDecodeError` that gives where (`offset`,
    `length`) but not the text when `text` is not a JSON object."""
    try:
        value = loads_event(text)
    except (ValueError, RecursionError):  # as in `loads_json`, inlined: this runs for every event
        problem = "is not valid JSON"
    else:
        if type(value) is dict or isinstance(value, Mapping):
            return value
        problem = "is not a JSON object"
    # Raised outside the except block: a JSON error as its context would quote the text.
    raise StreamDecodeError(f"{what} {problem}", offset=offset, length=len(text), **context.fields(0))


def decoded_body(build: Callable[[], _T], reply: Reply) -> _T:
    """``build()`` — a codec turning a decoded body into its answer — with a malformed body
    reported as the typed error `malformed_body_error` describes."""
    try:
        return build()
    except (MalformedAnswer, ValidationError) as problem:
        error = malformed_body_error(problem, reply)
    # Raised outside the except block: a validation error as its context would repeat the body.
    raise error


def decoded_event(context: ErrorContext, offset: int, length: int, handle: Callable[..., None], *args: Any) -> None:
    """``handle(*args)`` — a stream parser taking one decoded event — with a malformed event
    reported as the typed error `malformed_event_error` describes."""
    try:
        handle(*args)
        return
    except (MalformedAnswer, ValidationError) as problem:
        error = malformed_event_error(problem, context, offset=offset, length=length)
    # Raised outside the except block: a validation error as its context would repeat the event.
    raise error


def malformed_body_error(problem: MalformedAnswer | ValidationError, reply: Reply) -> ProviderError:
    """The typed error for a complete body that decoded as JSON but is not a valid answer."""
    context = reply.context
    detail = _detail(problem, context)
    return ProviderError(
        f"the server answered HTTP {reply.status} with a malformed body: {detail}",
        status=reply.status,
        retryable=True,
        code=MALFORMED_CODE,
        **context.fields(reply.status),
    )


def malformed_event_error(
    problem: MalformedAnswer | ValidationError, context: ErrorContext, *, offset: int, length: int
) -> StreamDecodeError:
    """The typed error for a stream event that decoded as JSON but is not a valid chunk."""
    detail = _detail(problem, context)
    return StreamDecodeError(
        f"a stream event is malformed: {detail}",
        offset=offset,
        length=length,
        code=MALFORMED_CODE,
        **context.fields(0),
    )


def _detail(problem: MalformedAnswer | ValidationError, context: ErrorContext) -> str:
    if isinstance(problem, MalformedAnswer):
        return problem.describe(context)
    first = problem.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"`{where}`: {first['msg']}, received {_shown(first.get('input'), context)}"
