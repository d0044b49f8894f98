"""The parts a stream is made of, shared by every wire protocol and driver: the sans-I/O
`StreamParser` contract (bytes in, typed events out) with `ParserBase` for the common state, the
parser of streams that get no bytes, and `OpenedStream`, what a driver hands over once the
response headers arrived.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ._driver import MAX_RESPONSE_BYTES
from ._error_context import ErrorContext
from ._events import StreamEvent
from ._response import ChatResponse

__all__ = ["NoByteParser", "OpenedStream", "ParserBase", "StreamParser"]


class StreamParser(Protocol):
    """Sans-I/O protocol decoder: raw bytes in, typed events out."""

    @property
    def done(self) -> bool:
        """True once the wire terminator (``[DONE]``, ``done: true``) was seen."""

    @property
    def model(self) -> str | None:
        """The model name the server reported, once known."""

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def flush(self) -> list[StreamEvent]:
        """Called at end of input: decode whatever is buffered."""


class ParserBase:
    """`done`, `model` and `response_id` for parsers that track them in ``_done`` / ``_model`` /
    ``_response_id``, and the `ErrorContext` their in-stream errors are built with (bound when
    the response arrives)."""

    _done = False
    _model: str | None = None
    _response_id: str | None = None
    context: ErrorContext
    """Set by each parser class (``NO_CONTEXT`` until a response binds one)."""

    def bind(self, context: ErrorContext) -> None:
        """Build errors with `context` from now on."""
        self.context = context

    @property
    def done(self) -> bool:
        return self._done

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def response_id(self) -> str | None:
        """The id the server gave the answer (a chat-completion chunk's ``id``, the Responses API's
        ``response.id``), once an event carried it. Optional for parsers: observers read it with
        ``getattr`` and record none when a parser does not have it."""
        return self._response_id

    def _note_response_id(self, value: Any) -> None:
        """Keep the first non-empty id an event carried (Azure's leading filter chunk has ``""``)."""
        if self._response_id is None and type(value) is str and value:
            self._response_id = value

    def completed(self, response: ChatResponse) -> ChatResponse:
        """The finished `response` (built from the events) with what the stream held beyond its
        events: the reasoning state a server wants back, a cost it reported."""
        return response


class NoByteParser:
    """The parser of streams whose events come from a complete response (`OpenedStream.full_response`)
    or from an in-process model, never from bytes."""

    done = True
    model: str | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        raise TypeError("this stream is not fed bytes")

    def flush(self) -> list[StreamEvent]:
        return []


@dataclass
class OpenedStream:
    """What a driver hands the stream once the response headers arrived with a success status."""

    chunks: Iterator[Any] | AsyncIterator[Any] | None
    """Raw bytes for the parser's `feed`, or decoded items for its ``feed_object`` (`decoded`)."""
    close: Callable[[], None] | Callable[[], Awaitable[None]]
    request_id: str | None
    host: str | None
    started: float
    full_response: ChatResponse | None = None
    """Set when the server answered with a complete (non-streamed) JSON body."""
    error_context: ErrorContext | None = None
    """What errors raised inside the stream carry (the parser builds them with it)."""
    decoded: bool = False
    """The chunks are decoded objects (an in-process model), fed to the parser's ``feed_object``."""
    max_bytes: int = MAX_RESPONSE_BYTES
    """Cap on the whole streamed body: the model's ``max_response_bytes``, as for a non-streamed one."""
