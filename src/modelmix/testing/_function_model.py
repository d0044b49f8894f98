"""`FunctionModel`: a Model whose answers come from a Python function (sync or async) or a script
of replies — for testing app code (and chains) with no network and no server at all."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar, Union

import anyio
import anyio.to_thread
from typing_extensions import Unpack

from .._call_deadline import remaining
from .._error_mapping import status_error
from .._error_tree import Phase, TransportKind
from .._exceptions import TransportError
from .._messages import Message, MessagesInput, ToolCall, to_messages
from .._model import Model
from .._profile import ModelProfile, ProfileOverride, build_profile, check_request
from .._response import ChatResponse, Usage
from .._settings import Settings, merge_settings
from .._streaming import AsyncStream, OpenedStream, Stream
from .._structured import output_achat, output_chat, output_stream
from .._sync_bridge import run_sync
from ..providers._openai_wire import OpenAIStreamParser
from ..resilience import Clock
from ..tokens._catalog import pricing_for
from ._replies import FakeReply, content_chunks, finish_reason_of, kept_chunks, scripted, usage_of

__all__ = ["FunctionModel"]

Answer = Union[str, FakeReply, ChatResponse]
AnswerFunction = Callable[[list[Message], Settings], Union[Answer, Awaitable[Answer]]]
Script = Union[str, FakeReply, Sequence[Union[str, FakeReply]], AnswerFunction]
T = TypeVar("T")

_REAL_TIME = Clock()


class FunctionModel(Model):
    """Answers with ``function(messages, settings)`` — a plain or an ``async`` function returning a
    string, a `FakeReply` or a full `ChatResponse`, or raising a modelmix error — or from a fixed
    reply or a list of replies served in turn (the last one repeating):

    ```python
    echo = FunctionModel(lambda messages, settings: messages[-1].text.upper())
    assert echo.chat("hi").text == "HI"
    flaky = FunctionModel([FakeReply("busy", status=429), "Hello!"])
    ```

    A `FakeReply` can misbehave like a server: ``status`` (the same typed error, retry hints from
    ``headers``), ``delay`` (a call's ``timeout`` cuts it short with a read timeout),
    ``chunk_delay`` and ``drop_after`` for streams. Waits go through `clock` (pass a
    `modelmix.testing.FakeClock` to take no real time). A plain function runs in a worker thread
    for ``achat``/``astream``, so a blocking one does not stall the event loop.

    Streams yield the events a server would have streamed for that answer, in `chunks` pieces.
    `calls` records every conversation the model received. ``profile=`` makes it claim the
    capabilities of another backend (``{"json_schema": False}``...), for strategies chosen from it.
    A reply with ``input_tokens``/``output_tokens`` reports that usage (streams too), priced like
    a real model's: register a price for ``"function:<name>"`` to see `cost` and `total_cost`.
    """

    def __init__(
        self,
        function: Script,
        *,
        name: str = "function",
        provider: str = "function",
        context_window: int | None = None,
        settings: Settings | None = None,
        clock: Clock | None = None,
        chunks: int = 4,
        profile: ProfileOverride = None,
    ) -> None:
        if isinstance(function, (str, FakeReply)):
            function = scripted([function])
        elif isinstance(function, Sequence):
            function = scripted(list(function))
        self.function: AnswerFunction = function
        self.name = name
        self.provider = provider
        self.settings = merge_settings(None, settings or {})
        self.clock = clock or _REAL_TIME
        self.chunks = max(1, chunks)
        self._context_window = context_window
        self._profile = build_profile((), profile)
        self.calls: list[list[Message]] = []
        # Priced like a real model: a test registers a price for "function:<name>" to see costs.
        self.pricing = pricing_for(self.provider, [self.name])

    @property
    def context_window(self) -> int | None:
        return self._context_window

    @property
    def profile(self) -> ModelProfile:
        """The capabilities it claims (``profile=``: a `ModelProfile` or a mapping of fields), so a
        test can stand in for a backend that enforces less; permissive by default."""
        return self._profile

    def __repr__(self) -> str:
        return f"<FunctionModel {self.provider}:{self.name}>"

    # ------------------------------------------------------------------------------- answers

    def _start(self, messages: MessagesInput, call_settings: Settings) -> tuple[list[Message], Settings]:
        settings = merge_settings(self.settings, call_settings)
        conversation = to_messages(messages)
        # Refused before "sending", as a real backend with this profile would be.
        check_request(self._profile, conversation, settings, provider=self.provider, model=self.name)
        self.calls.append(conversation)
        return conversation, settings

    def _answer(self, messages: MessagesInput, call_settings: Settings) -> tuple[Answer, Settings]:
        conversation, settings = self._start(messages, call_settings)
        result = self.function(conversation, settings)
        if inspect.isawaitable(result):
            result = run_sync(result, thread_name="modelmix-function-model")
        self._wait(result, settings)
        return result, settings

    async def _aanswer(self, messages: MessagesInput, call_settings: Settings) -> tuple[Answer, Settings]:
        conversation, settings = self._start(messages, call_settings)
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(conversation, settings)
        else:
            # A plain function may block like a real model: in a worker thread, and abandoned
            # (not waited for) when the caller's deadline or cancellation ends the call.
            produced = await anyio.to_thread.run_sync(
                lambda: self.function(conversation, settings), abandon_on_cancel=True
            )
            result = await produced if inspect.isawaitable(produced) else produced
        await self._await(result, settings)
        return result, settings

    def _latency(self, result: Answer, settings: Settings) -> tuple[float, bool]:
        """Seconds to wait before answering, and whether the call's time runs out first."""
        delay = result.delay if isinstance(result, FakeReply) else 0.0
        limit = min(float(settings.get("timeout", math.inf)), remaining())
        return (limit, True) if delay > limit else (delay, False)

    def _wait(self, result: Answer, settings: Settings) -> None:
        seconds, timed_out = self._latency(result, settings)
        if seconds > 0:
            self.clock.sleep(seconds)
        if timed_out:
            raise self._timeout(seconds)

    async def _await(self, result: Answer, settings: Settings) -> None:
        seconds, timed_out = self._latency(result, settings)
        if seconds > 0:
            await self.clock.asleep(seconds)
        if timed_out:
            raise self._timeout(seconds)

    def _network_error(self, message: str, kind: TransportKind, phase: Phase | None = None) -> TransportError:
        """What the HTTP driver raises for the same trouble on a real connection."""
        return TransportError(message, kind=kind, phase=phase, provider=self.provider, model=self.name)

    def _timeout(self, seconds: float) -> TransportError:
        return self._network_error(
            f"no response within {seconds:g} s (read timeout)", "read_timeout", "sent_no_response"
        )

    def _fail_on_status(self, reply: FakeReply) -> None:
        if reply.status >= 300:
            raise status_error(
                reply.status,
                reply.text or "error",
                headers=dict(reply.headers),
                provider=self.provider,
                model=self.name,
                request_id=reply.headers.get("x-request-id"),
            )

    def _response(self, result: Answer, conversation: Sequence[Message], latency: float) -> ChatResponse:
        if isinstance(result, ChatResponse):
            return result
        reply = FakeReply(text=result) if isinstance(result, str) else result
        self._fail_on_status(reply)
        if reply.drop_after is not None:
            raise self._network_error(
                "the server closed the connection before answering", "protocol", "sent_no_response"
            )
        calls = [
            ToolCall.from_raw(f"call_{i}", str(c["name"]), dict(c.get("arguments", {})))
            for i, c in enumerate(reply.tool_calls)
        ]
        usage = None
        if reply.input_tokens is not None or reply.output_tokens is not None:
            counted = usage_of(reply, [{"content": m.text} for m in conversation])
            usage = Usage(input_tokens=counted["prompt_tokens"], output_tokens=counted["completion_tokens"])
        return ChatResponse(
            message=Message(role="assistant", content=reply.text or (None if calls else ""), tool_calls=calls),
            finish_reason=finish_reason_of(reply),
            reasoning=reply.reasoning or None,
            reasoning_text=reply.reasoning or None,
            model=self.name,
            provider=self.provider,
            latency=latency,
            request_id=reply.headers.get("x-request-id"),
            usage=usage,
            cost=self.pricing.cost(usage),
        )

    # ----------------------------------------------------------------------------- the API

    @output_chat
    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        started = time.perf_counter()
        result, _ = self._answer(messages, settings)
        return self._response(result, self.calls[-1], time.perf_counter() - started)

    @output_achat
    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        started = time.perf_counter()
        result, _ = await self._aanswer(messages, settings)
        return self._response(result, self.calls[-1], time.perf_counter() - started)

    def _opened(self, result: Answer, started: float) -> tuple[OpenedStream, FakeReply | None]:
        if isinstance(result, ChatResponse):
            whole = OpenedStream(
                chunks=None, close=_nothing, request_id=None, host=None, started=started, full_response=result
            )
            return whole, None
        reply = FakeReply(text=result) if isinstance(result, str) else result
        self._fail_on_status(reply)
        opened = OpenedStream(
            chunks=None,
            close=_nothing,
            request_id=reply.headers.get("x-request-id"),
            host=None,
            started=started,
            decoded=True,
        )
        return opened, reply

    def _stream_items(self, reply: FakeReply) -> tuple[list[Any], bool]:
        """The decoded chunks to feed, and whether the connection drops after them."""
        usage = None
        if reply.input_tokens is not None or reply.output_tokens is not None:
            # A reply that names token counts reports them in the stream too, as servers do with
            # stream_options.include_usage.
            usage = usage_of(reply, [{"content": m.text} for m in (self.calls[-1] if self.calls else [])])
        content, closing = content_chunks(reply, self.name, self.chunks, usage=usage)
        if reply.drop_after is not None:
            return kept_chunks(reply, content), True
        return [*content, *closing, "[DONE]"], False

    def _dropped(self) -> TransportError:
        return self._network_error("the server closed the connection mid-stream", "protocol")

    @output_stream
    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        def open_stream() -> OpenedStream:
            started = time.perf_counter()
            result, _ = self._answer(messages, settings)
            opened, reply = self._opened(result, started)
            if reply is not None:
                opened.chunks = self._chunks(reply)
            return opened

        return Stream(open_stream, _parser_for(), provider=self.provider, model=self.name, pricing=self.pricing)

    def _chunks(self, reply: FakeReply) -> Iterator[Any]:
        items, drops = self._stream_items(reply)
        for index, item in enumerate(items):
            if index and reply.chunk_delay:
                self.clock.sleep(reply.chunk_delay)
            yield item
        if drops:
            raise self._dropped()

    async def _achunks(self, reply: FakeReply) -> AsyncIterator[Any]:
        items, drops = self._stream_items(reply)
        for index, item in enumerate(items):
            if index and reply.chunk_delay:
                await self.clock.asleep(reply.chunk_delay)
            yield item
        if drops:
            raise self._dropped()

    @output_stream
    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def open_stream() -> OpenedStream:
            started = time.perf_counter()
            result, _ = await self._aanswer(messages, settings)
            opened, reply = self._opened(result, started)
            if reply is not None:
                opened.chunks = self._achunks(reply)
            return opened

        return AsyncStream(open_stream, _parser_for(), provider=self.provider, model=self.name, pricing=self.pricing)


def _parser_for() -> OpenAIStreamParser:
    # Scripted replies are fed as decoded chunks; a `ChatResponse` answer streams as a whole
    # without reaching the parser.
    return OpenAIStreamParser()


def _nothing() -> None:
    return None
