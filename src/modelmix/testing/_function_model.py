"""`FunctionModel`: a Model whose answers come from a Python function — for testing app code
(and chains) with no network and no server at all."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio.to_thread
from typing_extensions import Unpack

from .._messages import Message, MessagesInput, ToolCall, to_messages
from .._model import Model
from .._response import ChatResponse
from .._settings import Settings, merge_settings
from .._streaming import AsyncStream, NoByteParser, OpenedStream, Stream
from ._server import FakeReply

__all__ = ["FunctionModel"]

Answer = Callable[[list[Message], Settings], "str | FakeReply | ChatResponse"]


class FunctionModel(Model):
    """Answers with ``function(messages, settings)``, which returns a string, a `FakeReply` or a
    full `ChatResponse` — or raises a modelmix error to simulate a failure:

    ```python
    echo = FunctionModel(lambda messages, settings: messages[-1].text.upper())
    assert echo.chat("hi").text == "HI"
    ```

    Streams yield the same events a server would have streamed for that answer.
    `calls` records every conversation the model received.
    """

    def __init__(
        self,
        function: Answer,
        *,
        name: str = "function",
        provider: str = "function",
        context_window: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.function = function
        self.name = name
        self.provider = provider
        self.settings = merge_settings(None, settings or {})
        self._context_window = context_window
        self.calls: list[list[Message]] = []

    @property
    def context_window(self) -> int | None:
        return self._context_window

    def _answer(self, messages: MessagesInput, call_settings: Settings) -> ChatResponse:
        settings = merge_settings(self.settings, call_settings)
        conversation = to_messages(messages)
        self.calls.append(conversation)
        started = time.perf_counter()
        result = self.function(conversation, settings)
        if isinstance(result, ChatResponse):
            return result
        reply = FakeReply(text=result) if isinstance(result, str) else result
        calls = [
            ToolCall.from_raw(f"call_{i}", str(c["name"]), dict(c.get("arguments", {})))
            for i, c in enumerate(reply.tool_calls)
        ]
        return ChatResponse(
            message=Message(role="assistant", content=reply.text or (None if calls else ""), tool_calls=calls),
            finish_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
            model=self.name,
            provider=self.provider,
            latency=time.perf_counter() - started,
        )

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return self._answer(messages, settings)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        # Run in a worker thread: the function may block like a real model would.
        return await anyio.to_thread.run_sync(lambda: self._answer(messages, settings))

    def _opened(self, response: ChatResponse) -> OpenedStream:
        return OpenedStream(
            chunks=None,
            close=lambda: None,
            request_id=None,
            host=None,
            started=time.perf_counter(),
            full_response=response,
        )

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        return Stream(
            lambda: self._opened(self._answer(messages, settings)),
            NoByteParser(),
            provider=self.provider,
            model=self.name,
        )

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def open_stream() -> OpenedStream:
            return self._opened(await self.achat(messages, **settings))

        return AsyncStream(open_stream, NoByteParser(), provider=self.provider, model=self.name)
