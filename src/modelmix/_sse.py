"""Sans-I/O decoders for Server-Sent Events and NDJSON.

Fed raw bytes in chunks of any size (split anywhere, even inside a UTF-8 sequence or between the
CR and LF of a line ending), they return complete events. Both the sync and the async stream
drivers use them, so framing behaves identically on both paths. Sizes are capped so a hostile or
broken server cannot make the client buffer without bound.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["DecoderLimitError", "NDJSONDecoder", "SSEDecoder", "SSEEvent"]

DEFAULT_MAX_LINE = 1 << 20  # 1 MiB: a longer SSE line means a broken or hostile server
DEFAULT_MAX_EVENT = 4 << 20  # 4 MiB


class DecoderLimitError(ValueError):
    """A line or event exceeded its cap. The stream driver turns it into ResponseTooLargeError."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} exceeds {limit} bytes")
        self.what = what
        self.limit = limit


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `event` is None for the default ("message") type."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class _LineSplitter:
    """Incremental bytes → lines, on CR, LF or CRLF, with a per-line cap."""

    __slots__ = ("_buffer", "_decoder", "_max_line", "_pending_cr", "consumed")

    def __init__(self, max_line: int) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._pending_cr = False
        self._max_line = max_line
        self.consumed = 0

    def feed(self, chunk: bytes) -> list[str]:
        self.consumed += len(chunk)
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if self._pending_cr:
            # The previous chunk ended in CR: a LF starting this one belongs to the same line end.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        lines: list[str] = []
        if "\r" not in text:
            # Fast path for the common LF-only case.
            parts = text.split("\n")
            parts[0] = self._buffer + parts[0]
            self._buffer = parts.pop()
            lines = parts
        else:
            data = self._buffer + text
            start = 0
            index = 0
            length = len(data)
            while index < length:
                char = data[index]
                if char == "\n" or char == "\r":
                    lines.append(data[start:index])
                    if char == "\r":
                        if index + 1 < length:
                            if data[index + 1] == "\n":
                                index += 1
                        else:
                            self._pending_cr = True
                    start = index + 1
                index += 1
            self._buffer = data[start:]
        if len(self._buffer) > self._max_line:
            raise DecoderLimitError("a line", self._max_line)
        for line in lines:
            if len(line) > self._max_line:
                raise DecoderLimitError("a line", self._max_line)
        return lines

    def flush(self) -> list[str]:
        tail = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        return [tail] if tail else []


class SSEDecoder:
    """WHATWG event-stream parsing: ``data:`` lines joined with newlines, a blank line dispatches,
    ``:`` comments and unknown fields ignored.

    `comments` counts keep-alive comments, so a caller can reset an idle timer on them.
    """

    __slots__ = ("_data", "_data_size", "_event", "_id", "_lines", "_max_event", "_retry", "comments")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        self._lines = _LineSplitter(max_line)
        self._max_event = max_event
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0

    @property
    def consumed(self) -> int:
        """Bytes fed so far (used as the offset in decode errors)."""
        return self._lines.consumed

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in self._lines.feed(chunk):
            if line:
                self._process_line(line)  # a non-blank line never dispatches
            else:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """At end of input: a final event not followed by a blank line is still dispatched.

        (WHATWG would drop it; servers that close right after the last ``data:`` line are common
        enough that dropping real content would be worse. Completeness is judged by the caller,
        from ``[DONE]`` or a finish reason.)
        """
        events = [e for e in (self._process_line(line) for line in self._lines.flush()) if e is not None]
        last = self._dispatch()
        if last is not None:
            events.append(last)
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            self.comments += 1
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data_size += len(value) + 1
            if self._data_size > self._max_event:
                raise DecoderLimitError("an event", self._max_event)
            self._data.append(value)
        elif field == "event":
            self._event = value or None
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        # Unknown fields are ignored, as the spec requires.
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data or self._data == [""]:
            # WHATWG: an empty data buffer dispatches nothing (e.g. a "data:" heartbeat).
            self._data = []
            self._data_size = 0
            self._event = None
            return None
        event = SSEEvent(data="\n".join(self._data), event=self._event, id=self._id, retry=self._retry)
        self._data = []
        self._data_size = 0
        self._event = None
        return event


class NDJSONDecoder:
    """Newline-delimited JSON framing: returns each non-blank line (still undecoded)."""

    __slots__ = ("_lines",)

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._lines = _LineSplitter(max_line)

    @property
    def consumed(self) -> int:
        return self._lines.consumed

    def feed(self, chunk: bytes) -> list[str]:
        return [line for line in self._lines.feed(chunk) if line.strip()]

    def flush(self) -> list[str]:
        return [line for line in self._lines.flush() if line.strip()]
