"""`Stream` and `AsyncStream`: the context managers `model.stream()` / `model.astream()` return.

The wire-specific part is a sans-I/O `StreamParser` (bytes in, typed events out). Everything else
— accumulating the final response, the commit point, turning failures into typed errors, closing
the connection — lives here once and behaves the same for sync and async.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import AsyncGeneratorType, GeneratorType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from ._accumulator import StreamAccumulator, events_from_response
from ._driver import MAX_RESPONSE_BYTES
from ._error_context import ErrorContext
from ._events import CONTENT_EVENTS, PartialOutput, StreamEvent, TextDelta
from ._exceptions import (
    ModelMixError,
    ResponseTooLargeError,
    StreamInterruptedError,
    StreamTruncatedError,
    translate_httpx_errors,
)
from ._response import ChatResponse
from ._sse import DecoderLimitError
from ._stream_parts import NoByteParser, OpenedStream, ParserBase, StreamParser
from ._structured import OutputError, OutputTracker
from ._watchdog import Watch, aread_past_the_end, catching_responses, read_past_the_end, socket_of
from .tokens._catalog import ModelPricing, pricing_for

if TYPE_CHECKING:
    from ._observe import StreamObserver

__all__ = [
    "AsyncStream",
    "NoByteParser",
    "OpenedStream",
    "ParserBase",
    "Stream",
    "StreamAccumulator",
    "StreamParser",
    "events_from_response",
]

logger = logging.getLogger("modelmix")


class _StreamState:
    """The logic shared by `Stream` and `AsyncStream`; no I/O here."""

    observer: StreamObserver | None = None
    """Set only while hooks are registered (`modelmix._observe`): told of the commit point and the end."""
    failure: BaseException | None = None
    """The error the stream raised to its reader, if any (for observers)."""

    def __init__(
        self,
        parser: StreamParser,
        *,
        provider: str,
        model: str,
        output: OutputTracker | None = None,
        pricing: ModelPricing | None = None,
    ) -> None:
        self.parser = parser
        self.pricing = pricing or pricing_for(provider, [model])
        self.output = output
        self._decode: Callable[[Any], list[StreamEvent]] = parser.feed
        self.provider = provider
        self.model_name = model
        self.acc = StreamAccumulator()
        self.committed = False
        self.finished = False
        self.opened: OpenedStream | None = None
        self.response: ChatResponse | None = None
        self._cap = MAX_RESPONSE_BYTES
        self._room: int | None = None
        """Bytes the body may still bring (None: decoded objects, not counted)."""

    def phase(self) -> Any:
        return "post_commit_stream" if self.committed else "pre_commit_stream"

    def accept(self, events: list[StreamEvent]) -> list[StreamEvent]:
        add = self.acc.add
        for event in events:
            add(event)
        if not self.committed and events:
            self.committed = any(isinstance(event, CONTENT_EVENTS) for event in events)
            if self.committed and self.observer is not None:
                self.observer.first_chunk()
        return events if self.output is None else self.output.on_events(events)

    def feed(self, chunk: Any) -> list[StreamEvent]:
        if self._room is not None:
            self._room -= len(chunk)
            if self._room < 0:
                raise self._too_large("the streamed answer", self._cap)
        try:
            events = self._decode(chunk)
        except DecoderLimitError as exc:
            raise self._too_large(f"{exc.what} in the stream", exc.limit) from None
        return self.accept(events)

    def _too_large(self, what: str, limit: int) -> ResponseTooLargeError:
        opened = self.opened
        return ResponseTooLargeError(
            f"{what} exceeds the {limit}-byte cap; the connection was closed",
            limit=limit,
            provider=self.provider,
            model=self.model_name,
            host=opened.host if opened else None,
            request_id=opened.request_id if opened else None,
            phase=self.phase(),
        )

    def end_of_input(self) -> list[StreamEvent]:
        """Flush the parser and check the stream really finished."""
        events = self.accept(self.parser.flush())
        if not self.parser.done:
            if self.acc.finish_reason is None:
                raise StreamTruncatedError(
                    "the stream ended before the model finished (no [DONE] and no finish reason): "
                    "the answer is incomplete",
                    partial_text=self.acc.text,
                    provider=self.provider,
                    model=self.model_name,
                    phase=self.phase(),
                    request_id=self.opened.request_id if self.opened else None,
                )
            logger.warning(
                "%s:%s stream ended without its terminator after a finish reason; accepted",
                self.provider,
                self.model_name,
            )
        return events

    def complete(self) -> ChatResponse:
        assert self.opened is not None
        self.finished = True
        # A stream answered with one JSON body keeps the model name that body reported.
        full = self.opened.full_response
        built = self.acc.build(
            provider=self.provider,
            model=self.parser.model or (full.model if full is not None else None) or self.model_name,
            request_id=self.opened.request_id,
            latency=time.perf_counter() - self.opened.started,
        )
        if full is not None:
            built = _with_answer_extras(built, full)
        else:
            completed = getattr(self.parser, "completed", None)  # parsers that add nothing have none
            if completed is not None:
                built = completed(built)
        built = self.pricing.priced(built)  # a cost the server reported stays
        self.response = built if self.output is None else self.output.finish(built)
        return self.response

    def start(self, opened: OpenedStream) -> OpenedStream:
        """The response arrived: errors the parser raises from now on carry its context."""
        self.opened = opened
        if opened.decoded:
            self._decode = self.parser.feed_object  # type: ignore[attr-defined]
        else:
            self._cap = self._room = opened.max_bytes
        bind = getattr(self.parser, "bind", None)
        if bind is not None:
            # A driver that brings no context of its own still gets complete errors: what the
            # stream knows (provider, model, host, request id) goes in before any is built.
            context = opened.error_context or ErrorContext(
                provider=self.provider, model=self.model_name, host=opened.host, request_id=opened.request_id
            )
            bind(context)
        return opened

    def fail(self, exc: ModelMixError) -> ModelMixError:
        """After the commit point, wrap a failure so the caller gets the partial output."""
        if not self.committed or isinstance(exc, (StreamInterruptedError, ResponseTooLargeError, OutputError)):
            # A size cap is reported as itself whenever it is hit, as for a non-streamed answer;
            # so is an output that does not validate (the stream itself was complete).
            return exc
        wrapped = StreamInterruptedError(
            f"the stream failed after content was delivered: {exc.message}",
            partial_text=self.acc.text,
            partial_tool_calls=self.acc.tool_calls(),
            usage=self.acc.usage,
            cost=self.pricing.cost(self.acc.usage, self.parser.model),
            n_events=self.acc.n_events,
            provider=self.provider,
            model=self.model_name,
            request_id=self.opened.request_id if self.opened else None,
            phase="post_commit_stream",
            retryable=False,
        )
        wrapped.__cause__ = exc
        return wrapped

    def reraise(self, exc: ModelMixError) -> NoReturn:
        """Raise `exc`, or — after the commit point — the error carrying the partial output."""
        failure = self.failure = self.fail(exc)
        if failure is exc:
            raise exc
        raise failure from exc

    def translate(self) -> Any:
        opened = self.opened
        return translate_httpx_errors(
            provider=self.provider,
            model=self.model_name,
            host=opened.host if opened else None,
            request_id=opened.request_id if opened else None,
            phase=self.phase(),
        )

    def require_response(self) -> ChatResponse:
        if self.response is None:
            raise ModelMixError("the stream has not finished yet: iterate it to the end before reading .response")
        return self.response


class _StreamBase:
    _state: _StreamState

    @property
    def committed(self) -> bool:
        """True once content reached the caller (after this, failures raise StreamInterruptedError)."""
        return self._state.committed

    def _follow_output(self, tracker: OutputTracker) -> None:
        """With ``output=``: `tracker` adds `PartialOutput` events and validates the final response."""
        self._state.output = tracker

    @property
    def response(self) -> ChatResponse:
        """The accumulated final response; available after the stream has been read to its end."""
        return self._state.require_response()

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._state.acc.text

    def __repr__(self) -> str:
        status = "finished" if self._state.finished else ("open" if self._state.opened else "not started")
        return f"<{type(self).__name__} {self._state.provider}:{self._state.model_name} {status}>"


class Stream(_StreamBase):
    """A streamed answer. Use it as a context manager so the connection is always released:

    ```python
    with model.stream("Write a haiku") as s:
        for delta in s.text_deltas():
            print(delta, end="")
    print(s.response.usage)
    ```
    """

    def __init__(
        self,
        opener: Callable[[], OpenedStream],
        parser: StreamParser,
        *,
        provider: str,
        model: str,
        pricing: ModelPricing | None = None,
    ):
        self._opener = opener
        self._state = _StreamState(parser, provider=provider, model=model, pricing=pricing)
        self._iterator: Iterator[StreamEvent] | None = None
        self._closed = False
        self._watch = Watch()
        self._limit_error: BaseException | None = None

    def __enter__(self) -> Stream:
        self._open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> OpenedStream:
        if self._state.opened is None:
            if self._closed:
                raise ModelMixError("this stream was closed; start a new one with model.stream(...)")
            with catching_responses() as sent:
                opened = self._state.start(self._opener())
            interrupt = socket_of(sent.responses[-1]) if sent.responses else None
            if interrupt is not None:
                self._watch.watch(interrupt)
            return opened
        return self._state.opened

    def _limit_reads(self, limit: Callable[[Watch], None]) -> None:
        """Put a time limit on this stream's reads (a wrapper's first-token, idle or deadline
        limit): when it passes, a blocked read is interrupted and the limit's error raised."""
        limit(self._watch)

    def _raise_if_limit_passed(self) -> None:
        fired = self._watch.fired
        if fired is not None:
            self._limit_error = fired()
            raise self._limit_error

    def close(self) -> None:
        """Release the connection. Safe to call more than once."""
        self._release()
        iterator = self._iterator
        if isinstance(iterator, GeneratorType) and not iterator.gi_running:
            iterator.close()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._watch.stop()
        opened = self._state.opened
        if opened is not None:
            opened.close()
        if self._state.observer is not None:
            self._state.observer.released(self._state)

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def _events(self) -> Iterator[StreamEvent]:
        state = self._state
        try:
            opened = self._open()
            if opened.full_response is not None:
                yield from state.accept(events_from_response(opened.full_response))
                state.complete()
                return
            assert opened.chunks is not None
            chunks = iter(opened.chunks)  # type: ignore[arg-type]
            watch = self._watch
            watch.waiting()
            awaiting_content = True
            while True:
                # Translated only when it fails: entering a context manager for every chunk cost
                # more than decoding the chunk. Non-httpx exceptions pass through translate() as is.
                try:
                    chunk = next(chunks, None)
                except Exception:
                    self._raise_if_limit_passed()
                    with state.translate():
                        raise
                if chunk is None:
                    self._raise_if_limit_passed()
                    break
                events = state.feed(chunk)
                if events:
                    # The idle limit runs only while the caller waits for an event.
                    watch.not_waiting()
                    if awaiting_content and state.committed:
                        watch.content_arrived()
                        awaiting_content = False
                    yield from events
                    watch.waiting()
                if state.parser.done:
                    watch.not_waiting()
                    read_past_the_end(chunks, watch)
                    break
            yield from state.end_of_input()
            state.complete()
        except ModelMixError as exc:
            if exc is self._limit_error:
                # Raised as built: the limit's owner chose the error (it carries what it needs).
                state.failure = exc
                raise
            state.reraise(exc)
        finally:
            self._release()

    def text_deltas(self) -> Iterator[str]:
        """Only the text pieces, in order."""
        for event in self:
            if isinstance(event, TextDelta):
                yield event.text

    def outputs(self) -> Iterator[Any]:
        """With ``output=``: the value so far each time it grows (plain JSON: dicts, lists...),
        then the validated object. Raises `OutputValidationError` if the answer does not validate."""
        for event in self:
            if type(event) is PartialOutput:
                yield event.value
        yield self.response.output

    def until_done(self) -> ChatResponse:
        """Read the rest of the stream and return the final response."""
        for _ in self:
            pass
        return self.response

    def __del__(self) -> None:
        # A stream dropped without close(): give the connection back rather than leak it.
        if not getattr(self, "_closed", True) and getattr(self, "_state", None) is not None and self._state.opened:
            self._release()


class AsyncStream(_StreamBase):
    """The async counterpart of `Stream`:

    ```python
    async with model.astream("Write a haiku") as s:
        async for delta in s.text_deltas():
            print(delta, end="")
    ```
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[OpenedStream]],
        parser: StreamParser,
        *,
        provider: str,
        model: str,
        pricing: ModelPricing | None = None,
    ):
        self._opener = opener
        self._state = _StreamState(parser, provider=provider, model=model, pricing=pricing)
        self._iterator: AsyncIterator[StreamEvent] | None = None
        self._text_iterators: list[AsyncIterator[Any]] = []
        self._closed = False

    async def __aenter__(self) -> AsyncStream:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _open(self) -> OpenedStream:
        if self._state.opened is None:
            if self._closed:
                raise ModelMixError("this stream was closed; start a new one with model.astream(...)")
            return self._state.start(await self._opener())
        return self._state.opened

    async def aclose(self) -> None:
        """Release the connection. Safe to call more than once, and safe inside a cancelled scope."""
        await self._release()
        with anyio.CancelScope(shield=True):
            for deltas in self._text_iterators:
                if isinstance(deltas, AsyncGeneratorType) and not deltas.ag_running:
                    await deltas.aclose()
            self._text_iterators.clear()
            iterator = self._iterator
            if isinstance(iterator, AsyncGeneratorType) and not iterator.ag_running:
                await iterator.aclose()

    async def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        opened = self._state.opened
        if opened is not None:
            result = opened.close()
            if result is not None:
                # Shielded: a cancelled caller must still give the connection back.
                with anyio.CancelScope(shield=True):
                    await result
            # Finalise the byte iterator too: left to the GC, trio warns (ResourceWarning).
            closer = getattr(opened.chunks, "aclose", None)
            if closer is not None and not getattr(opened.chunks, "ag_running", False):
                with anyio.CancelScope(shield=True):
                    await closer()
        if self._state.observer is not None:
            self._state.observer.released(self._state)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def _events(self) -> AsyncIterator[StreamEvent]:
        state = self._state
        try:
            opened = await self._open()
            if opened.full_response is not None:
                for event in state.accept(events_from_response(opened.full_response)):
                    yield event
                state.complete()
                return
            assert opened.chunks is not None
            chunks = aiter(opened.chunks)  # type: ignore[arg-type]
            while True:
                try:  # see Stream._events
                    chunk = await anext(chunks, None)
                except Exception:
                    with state.translate():
                        raise
                if chunk is None:
                    break
                for event in state.feed(chunk):
                    yield event
                if state.parser.done:
                    await aread_past_the_end(chunks)
                    break
            for event in state.end_of_input():
                yield event
            state.complete()
        except ModelMixError as exc:
            state.reraise(exc)
        finally:
            await self._release()

    def text_deltas(self) -> AsyncIterator[str]:
        """Only the text pieces, in order."""
        deltas = self._text_deltas()
        # Closed with the stream: a caller that breaks out of the loop leaves nothing for the
        # garbage collector to finalise (trio warns about every async generator it has to).
        self._text_iterators.append(deltas)
        return deltas

    async def _text_deltas(self) -> AsyncIterator[str]:
        async for event in self:
            if isinstance(event, TextDelta):
                yield event.text

    def outputs(self) -> AsyncIterator[Any]:
        """With ``output=``: the value so far each time it grows, then the validated object."""
        values = self._outputs()
        self._text_iterators.append(values)  # closed with the stream, as text_deltas()
        return values

    async def _outputs(self) -> AsyncIterator[Any]:
        async for event in self:
            if type(event) is PartialOutput:
                yield event.value
        yield self.response.output

    async def until_done(self) -> ChatResponse:
        """Read the rest of the stream and return the final response."""
        async for _ in self:
            pass
        return self.response


def _with_answer_extras(built: ChatResponse, full: ChatResponse) -> ChatResponse:
    """`built` (from the events of a stream answered with one JSON body) with what that body's
    parse added beyond its events: the reasoning state and a cost the server reported."""
    update: dict[str, Any] = {}
    if full.message.reasoning_state is not None:
        update["message"] = built.message.model_copy(update={"reasoning_state": full.message.reasoning_state})
    if full.cost is not None:
        update["cost"] = full.cost
    return built.model_copy(update=update) if update else built
