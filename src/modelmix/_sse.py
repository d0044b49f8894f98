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
_MAX_RETRY_DIGITS = 10


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
    """Incremental bytes → lines, on CR, LF or CRLF, with a per-line cap.

    An unfinished line is kept as a list of pieces and joined once, when its end arrives: joining
    on every chunk would copy the line again and again, which costs quadratic time when a long
    line trickles in a few bytes at a time.
    """

    __slots__ = ("_decoder", "_max_line", "_pending_cr", "_pieces", "_size", "clean", "consumed")

    def __init__(self, max_line: int) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pieces: list[str] = []
        self._size = 0
        self._pending_cr = False
        self._max_line = max_line
        self.consumed = 0
        self.clean = True

    @property
    def max_line(self) -> int:
        return self._max_line

    def feed(self, chunk: bytes) -> list[str]:
        self.consumed += len(chunk)
        lines = self._split(self._decoder.decode(chunk))
        # Nothing carried over to the next chunk: no unfinished line, no CR, no partial character.
        self.clean = not self._pieces and not self._pending_cr and not self._decoder.getstate()[0]
        return lines

    def _split(self, text: str) -> list[str]:
        if self._pending_cr and text:
            # The previous chunk ended in CR: a LF starting this one belongs to the same line end.
            self._pending_cr = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\r" in text:
            # A CR at the very end may be the first half of a CRLF split across chunks.
            self._pending_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._pieces.append(text)
            self._size += len(text)
            if self._size > self._max_line:
                raise DecoderLimitError("a line", self._max_line)
            return []
        lines = text.split("\n")
        if self._pieces:
            self._pieces.append(lines[0])
            lines[0] = "".join(self._pieces)
        tail = lines.pop()
        self._pieces = [tail] if tail else []
        self._size = len(tail)
        for line in lines:
            if len(line) > self._max_line:
                raise DecoderLimitError("a line", self._max_line)
        if self._size > self._max_line:
            raise DecoderLimitError("a line", self._max_line)
        return lines

    def flush(self) -> list[str]:
        lines = self._split(self._decoder.decode(b"", final=True))
        tail = "".join(self._pieces)
        self._pieces = []
        self._size = 0
        self.clean = True
        return [*lines, tail] if tail else lines


class SSEDecoder:
    """WHATWG event-stream parsing: ``data:`` lines joined with newlines, a blank line dispatches,
    ``:`` comments and unknown fields ignored.

    `comments` counts keep-alive comments, so a caller can reset an idle timer on them.
    """

    __slots__ = ("_data", "_data_size", "_event", "_fast_limit", "_id", "_lines", "_max_event", "_retry", "comments")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        self._lines = _LineSplitter(max_line)
        self._max_event = max_event
        self._fast_limit = min(max_line, max_event)
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

    def whole_data(self, chunk: bytes) -> str | None:
        """The data of `chunk` when it is exactly one whole ``data:`` event and nothing is pending
        from the chunks before — what servers send almost every time — else None (then `feed` it).

        The same result as `feed` would give, in one step instead of a split, a line and a
        dispatch; "" when the event carries no data (which dispatches nothing)."""
        lines = self._lines
        if (
            chunk[:6] == b"data: "
            and chunk[-2:] == b"\n\n"
            and lines.clean
            and not self._data
            and self._event is None
            and chunk.count(b"\n") == 2
            and b"\r" not in chunk
            and len(chunk) <= self._fast_limit
        ):
            lines.consumed += len(chunk)
            return chunk[6:-2].decode("utf-8", "replace")
        return None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        data = self.whole_data(chunk)
        if data is not None:
            return [SSEEvent(data=data, event=None, id=self._id, retry=self._retry)] if data else []
        lines = self._lines
        events: list[SSEEvent] = []
        for line in lines.feed(chunk):
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
        elif field == "retry" and value.isascii() and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS:
            # Only ASCII digits count (str.isdigit also accepts "²" or "٣"), and a number no
            # reconnection delay needs is ignored rather than parsed.
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
