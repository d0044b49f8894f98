"""Best-effort values of JSON text that is still arriving (streamed structured output).

`PartialJSON` is fed the text as the model produces it and keeps, at every point, the value the
text so far determines: completed strings, numbers, literals, objects with their completed
key/value pairs, arrays with their completed items, and the unfinished string *value* being
written (so text fields grow as they stream). Anything the next character could still change —
an unfinished key, a key without its value, ``-``, ``1.``, ``12`` (could become ``123``),
``tr`` — is left out, so every value it reports is "contained" in the final one.

The work is linear in the length of the stream: the scanner state (nesting stack, open string,
pending token) is kept between feeds, only the unconsumed tail of the text is rescanned, string
contents are decoded once, piece by piece, by the C JSON decoder, and the tree of values is
built in place. Reading `value` copies only the containers that are still open (completed
sub-values are shared between reads and never changed again — treat them as read-only).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["MISSING", "PartialJSON"]


class _Missing:
    """The type of `MISSING`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""`PartialJSON.value` before anything parseable arrived (``None`` is JSON ``null``)."""

_WHITESPACE: Final = " \t\n\r"
_SKIP_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_PLAIN_STRING_CHARS: Final = re.compile(r'[^"\\]*')
_NUMBER_CHARS: Final = re.compile(r"[-+.eE0-9]+")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_INTEGER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_WORD: Final = re.compile(r"[A-Za-z_]+")
_LITERALS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_FENCE: Final = "```"
_FENCE_INFO: Final = re.compile(r"[A-Za-z0-9_.+-]*[ \t\r]*")

# Where a container is in its grammar.
_FIRST: Final = 0  # just opened: a key / value or the closing bracket
_KEY: Final = 1  # object, after a comma: a key
_COLON: Final = 2  # object, after a key: ':'
_VALUE: Final = 3  # a value
_AFTER: Final = 4  # after a value: ',' or the closing bracket

# Where the whole text is.
_BEFORE: Final = 0  # before the value: whitespace, an opening fence
_INSIDE: Final = 1
_DONE: Final = 2  # the top-level value is complete: whitespace, a closing fence
_FAILED: Final = 3


@dataclass(slots=True)
class _Frame:
    """One open object or array."""

    container: dict[str, Any] | list[Any]
    state: int = _FIRST
    key: str = ""  # objects: the key whose value comes (or came) last


@dataclass(slots=True)
class _OpenString:
    """A string whose closing quote has not arrived: its decoded pieces so far."""

    is_key: bool
    parts: list[str] = field(default_factory=list)


class PartialJSON:
    """Incremental best-effort parser for one JSON value arriving as text.

    ``feed(fragment)`` returns True when the fragment changed `value` (or made it `complete`);
    `value` is `MISSING` until the text determines anything. Text before the value may be
    whitespace and an opening Markdown fence (```` ```json ````); after it, whitespace, and the
    closing fence followed by anything. It never raises on text: when the text can never be
    JSON, `error()` says why and `value` keeps what the text determined before the fault.

    Typical use, over a stream of text deltas::

        parser = PartialJSON()
        for delta in deltas:
            if parser.feed(delta):
                show(parser.value)  # MISSING, then ever more complete values
        final = parser.finish()  # the end of the text: settles a trailing number
        if parser.error() is not None: ...  # raise the typed error from parser.text
    """

    __slots__ = (
        "_changed",
        "_closing_fence",
        "_error",
        "_fenced",
        "_fragments",
        "_json_end",
        "_json_start",
        "_offset",
        "_phase",
        "_root",
        "_snapshot",
        "_stack",
        "_string",
        "_work",
    )

    def __init__(self) -> None:
        self._fragments: list[str] = []
        self._work = ""  # the text not consumed yet (an unfinished token, escape or fence)
        self._offset = 0  # offset of `_work` in the whole text
        self._phase = _BEFORE
        self._stack: list[_Frame] = []
        self._string: _OpenString | None = None
        self._root: Any = MISSING
        self._snapshot: Any = MISSING
        self._error: str | None = None
        self._fenced = False
        self._closing_fence = False
        self._json_start: int | None = None
        self._json_end: int | None = None
        self._changed = False

    # -- reading -------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """All the text fed so far."""
        if len(self._fragments) > 1:
            self._fragments = ["".join(self._fragments)]
        return self._fragments[0] if self._fragments else ""

    @property
    def json_text(self) -> str:
        """The text of the JSON value alone (no fence, no surrounding whitespace); up to the end
        of the text while the value is incomplete, empty before it starts."""
        if self._json_start is None:
            return ""
        return self.text[self._json_start : self._json_end]

    @property
    def complete(self) -> bool:
        """True once a whole top-level value was read."""
        return self._json_end is not None

    @property
    def value(self) -> Any:
        """The best-effort value of the text so far, or `MISSING`."""
        if self._snapshot is MISSING:
            self._snapshot = self._build_snapshot()
        return self._snapshot

    def error(self) -> str | None:
        """Why the text can never be JSON (with the offset of the fault), or None."""
        return self._error

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, fragment: str) -> bool:
        """Append `fragment`; True when `value` changed (or the value became complete)."""
        if not fragment:
            return False
        self._fragments.append(fragment)
        if self._phase == _FAILED:
            self._offset += len(fragment)
            return False
        self._work += fragment
        return self._advance(final=False)

    def finish(self) -> Any:
        """Declare the end of the text: a number at its very end is complete now (nothing can
        extend it any more); an unfinished value sets `error()`. Returns `value`.

        A closing fence cut short after a complete value is not an error."""
        if self._phase in (_BEFORE, _INSIDE):
            self._advance(final=True)
            if self._phase == _BEFORE:
                self._fail(self._offset + len(self._work), "the text ended before any JSON value")
            elif self._phase == _INSIDE:
                self._fail(self._offset + len(self._work), "the text ended inside the JSON value")
        return self.value

    def _advance(self, *, final: bool) -> bool:
        """Scan the unconsumed text; whether the value changed."""
        self._changed = False
        consumed = self._scan(final=final)
        self._offset += consumed
        self._work = self._work[consumed:]
        if self._changed:
            self._snapshot = MISSING
        return self._changed

    # -- the scanner ---------------------------------------------------------------------------

    def _fail(self, offset: int, reason: str) -> int:
        self._error = f"not JSON: {reason} (at offset {offset})"
        self._phase = _FAILED
        return len(self._work)

    def _scan(self, *, final: bool) -> int:
        """Consume as much of `_work` as can be decided; return how many characters."""
        work = self._work
        end = len(work)
        pos = 0
        while pos < end:
            if self._string is not None:
                pos = self._scan_string(work, pos)
                if self._failed():
                    return end
                if self._string_open():  # the rest of the text is inside the string
                    return pos
                self._mark_end(pos)
                continue
            pos = _SKIP_WHITESPACE.match(work, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                break
            if self._phase == _INSIDE:
                advanced = self._structural(work, pos, final)
            elif self._phase == _BEFORE:
                advanced = self._before_value(work, pos, final)
            elif self._phase == _DONE:
                advanced = self._after_value(work, pos, final)
            else:
                return end
            if advanced == pos:  # an unfinished token: wait for more text
                return pos
            pos = advanced
            self._mark_end(pos)
        return pos

    def _failed(self) -> bool:
        return self._phase == _FAILED

    def _string_open(self) -> bool:
        return self._string is not None

    def _mark_end(self, pos: int) -> None:
        """Record where the JSON value ended, the first time the scan finds it complete."""
        if self._phase == _DONE and self._json_end is None:
            self._json_end = self._offset + pos

    def _before_value(self, work: str, pos: int, final: bool) -> int:
        if work[pos] == "`" and not self._fenced:
            rest = work[pos:]
            if len(rest) < len(_FENCE) and _FENCE.startswith(rest) and not final:
                return pos
            newline = rest.find("\n")
            info = rest[len(_FENCE) : newline if newline >= 0 else len(rest)]
            if not rest.startswith(_FENCE) or not _FENCE_INFO.fullmatch(info):
                return self._fail(self._offset + pos, "expected a JSON value, found a malformed code fence")
            if newline < 0:
                return pos if not final else self._fail(self._offset + pos, "the text ended inside the fence")
            self._fenced = True
            return pos + newline + 1
        self._phase = _INSIDE
        self._json_start = self._offset + pos
        return self._value_start(work, pos, final)

    def _after_value(self, work: str, pos: int, final: bool) -> int:
        if self._closing_fence:  # the fence ended the JSON; models often add a remark after it
            return len(work)
        if self._fenced:
            rest = work[pos : pos + len(_FENCE)]
            if rest == _FENCE:
                self._closing_fence = True
                return pos + len(_FENCE)
            if _FENCE.startswith(rest) and not final:
                return pos
        return self._fail(self._offset + pos, f"unexpected {work[pos]!r} after the JSON value")

    def _structural(self, work: str, pos: int, final: bool) -> int:
        frame = self._stack[-1] if self._stack else None
        if frame is None:  # the top-level value is a scalar still being read
            return self._value_start(work, pos, final)
        char = work[pos]
        state = frame.state
        is_object = type(frame.container) is dict
        if state == _AFTER:
            if char == ",":
                frame.state = _KEY if is_object else _VALUE
                return pos + 1
            if char == ("}" if is_object else "]"):
                return self._close(pos)
            expected = "',' or '}'" if is_object else "',' or ']'"
            return self._fail(self._offset + pos, f"expected {expected}, found {char!r}")
        if state == _FIRST and char == ("}" if is_object else "]"):
            return self._close(pos)
        if is_object and state in (_FIRST, _KEY):
            if char != '"':
                return self._fail(self._offset + pos, f"expected a key in double quotes, found {char!r}")
            self._string = _OpenString(is_key=True)
            return pos + 1
        if state == _COLON:
            if char != ":":
                return self._fail(self._offset + pos, f"expected ':', found {char!r}")
            frame.state = _VALUE
            return pos + 1
        return self._value_start(work, pos, final)

    def _value_start(self, work: str, pos: int, final: bool) -> int:
        char = work[pos]
        if char == "{":
            self._put({}, container=True)
            return pos + 1
        if char == "[":
            self._put([], container=True)
            return pos + 1
        if char == '"':
            self._string = _OpenString(is_key=False)
            self._changed = True  # the value now shows an empty string that will grow
            return pos + 1
        if char == "-" or "0" <= char <= "9":
            return self._number(work, pos, final)
        if _WORD.match(char):
            return self._literal(work, pos, final)
        return self._fail(self._offset + pos, f"expected a JSON value, found {char!r}")

    def _number(self, work: str, pos: int, final: bool) -> int:
        match = _NUMBER_CHARS.match(work, pos)
        assert match is not None
        token = match.group()
        if match.end() == len(work) and not final:
            return pos  # "12" may still become "123"
        if not _NUMBER.fullmatch(token):
            return self._fail(self._offset + pos, f"malformed number {token[:20]!r}")
        try:
            number: int | float = int(token) if _INTEGER.fullmatch(token) else float(token)
        except ValueError:  # more digits than Python converts
            return self._fail(self._offset + pos, "number too long to convert")
        self._put(number)
        return match.end()

    def _literal(self, work: str, pos: int, final: bool) -> int:
        match = _WORD.match(work, pos)
        assert match is not None
        word = match.group()
        if word in _LITERALS:
            self._put(_LITERALS[word])
            return match.end()
        if match.end() == len(work) and not final and any(lit.startswith(word) for lit in _LITERALS):
            return pos
        return self._fail(self._offset + pos, f"expected a JSON value, found {word[:20]!r}")

    def _scan_string(self, work: str, pos: int) -> int:
        """Read string contents from `pos`; decode what is safe to decode. Returns the position
        after the closing quote, or where the undecidable tail starts."""
        string = self._string
        assert string is not None
        start = pos
        end = len(work)
        closed = False
        while True:
            pos = _PLAIN_STRING_CHARS.match(work, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                break
            if work[pos] == '"':
                closed = True
                break
            # A backslash: wait for the whole escape, and for the low half of a surrogate pair
            # (decoding the halves apart would give two lone surrogates, not one character).
            if pos + 1 >= end:
                break
            if work[pos + 1] != "u":
                pos += 2
                continue
            if pos + 6 > end:
                break
            if 0xD8 <= _hex_byte(work, pos + 2) <= 0xDB and _may_start_escape(work[pos + 6 : pos + 12]):
                break
            pos += 6
        if pos > start:
            try:
                piece = json.loads('"' + work[start:pos] + '"')
            except ValueError:
                return self._fail(self._offset + start, "invalid escape or control character in a string")
            if piece:
                string.parts.append(piece)
                if not string.is_key:
                    self._changed = True
        if not closed:
            return pos
        self._string = None
        decoded = "".join(string.parts)
        if string.is_key:
            frame = self._stack[-1]
            frame.key = decoded
            frame.state = _COLON
        else:
            self._put(decoded, shown=True)
        return pos + 1

    def _put(self, value: Any, *, container: bool = False, shown: bool = False) -> None:
        """Insert a value where the grammar is; `shown`: it was already visible (a string that
        streamed), so inserting it changes nothing."""
        if not shown:
            self._changed = True
        if self._stack:
            frame = self._stack[-1]
            parent = frame.container
            if isinstance(parent, dict):
                parent[frame.key] = value
            else:
                parent.append(value)
            frame.state = _AFTER
        else:
            self._root = value
            if not container:
                self._complete()
        if container:
            self._stack.append(_Frame(value))

    def _close(self, pos: int) -> int:
        self._stack.pop()
        if not self._stack:
            self._complete()
        return pos + 1

    def _complete(self) -> None:
        self._phase = _DONE
        self._changed = True

    # -- the value -----------------------------------------------------------------------------

    def _build_snapshot(self) -> Any:
        string = self._string
        partial = None
        if string is not None and not string.is_key:
            # Kept joined: the next read joins one string and the few pieces since, not all pieces.
            partial = "".join(string.parts)
            string.parts[:] = [partial]
        if not self._stack:
            if partial is not None:
                return partial
            return self._root
        child: Any = MISSING
        for frame in reversed(self._stack):
            source = frame.container
            copy: dict[str, Any] | list[Any] = dict(source) if type(source) is dict else list(source)
            if child is not MISSING:
                _set_last(copy, frame, child)
            elif partial is not None:
                _set_last(copy, frame, partial, append=True)
            child = copy
        return child


def _set_last(copy: dict[str, Any] | list[Any], frame: _Frame, child: Any, *, append: bool = False) -> None:
    """Put `child` where the frame's open (or partial) value goes."""
    if isinstance(copy, dict):
        copy[frame.key] = child
    elif append:
        copy.append(child)
    else:
        copy[-1] = child


def _hex_byte(text: str, pos: int) -> int:
    """The high byte of the ``\\uXXXX`` escape whose digits start at `pos` (-1 if malformed)."""
    digits = text[pos : pos + 2]
    return int(digits, 16) if len(digits) == 2 and all(d in _HEX for d in digits) else -1


def _may_start_escape(tail: str) -> bool:
    """Whether `tail` (at most 6 characters) is an unfinished ``\\uXXXX`` escape."""
    if len(tail) >= 6:
        return False
    return tail in ("", "\\") or (tail.startswith("\\u") and all(d in _HEX for d in tail[2:]))
