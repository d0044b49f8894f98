"""`HoldingModel`: a wrapper that takes something before each call and gives it back when the call
is over — a budget's reservation, a rate limit's slot — for chat, achat, stream and astream alike.

A stream holds it from the moment it opens until it ends (read to the end, closed early, or
failed), so what a stream consumed is known before it is given back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from typing_extensions import Unpack

from .._messages import MessagesInput
from .._response import ChatResponse
from .._settings import Settings
from .._streaming import AsyncStream, Stream
from ._clock import SYSTEM_CLOCK, Deadline
from ._streams import Connected, GuardedAsyncStream, GuardedStream, aclose_quietly, stream_attempts
from ._wrapper import WrapperModel

__all__ = ["HoldingModel"]

H = TypeVar("H")
_NO_DEADLINE = Deadline(at=math.inf, clock=SYSTEM_CLOCK)


class HoldingModel(WrapperModel, Generic[H]):
    """Subclasses say what a call takes (`_take` / `_atake`) and how it is given back (`_give_back`)."""

    def _take(self, messages: MessagesInput, settings: Mapping[str, Any]) -> H:
        raise NotImplementedError

    async def _atake(self, messages: MessagesInput, settings: Mapping[str, Any]) -> H:
        raise NotImplementedError

    def _give_back(self, held: H, response: ChatResponse | None, error: BaseException | None) -> None:
        """The call is over: `response` when it answered in full, else the `error` (None: a stream
        left before its end)."""
        raise NotImplementedError

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        held = self._take(messages, settings)
        try:
            response = self.wrapped.chat(messages, **settings)
        except BaseException as exc:
            self._give_back(held, None, exc)
            raise
        self._give_back(held, response, None)
        return response

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        held = await self._atake(messages, settings)
        try:
            response = await self.wrapped.achat(messages, **settings)
        except BaseException as exc:
            self._give_back(held, None, exc)
            raise
        self._give_back(held, response, None)
        return response

    def _done_hook(self, held: H, inner: Stream | AsyncStream) -> Any:
        def done(error: BaseException | None, completed: bool) -> None:
            # A stream left before its end may have consumed more than it delivered.
            self._give_back(held, inner.response if completed and error is None else None, error)

        return done

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        def connect() -> Connected:
            held = self._take(messages, settings)
            inner: Stream | None = None
            try:
                inner = self.wrapped.stream(messages, **settings)
                for limit in guarded.inherited:
                    inner._limit_reads(limit)
                inner.__enter__()
            except BaseException as exc:
                if inner is not None:
                    inner.close()
                self._give_back(held, None, exc)
                raise
            attempts = stream_attempts(inner) or []
            return Connected(inner, iter(inner), [], attempts, _NO_DEADLINE, on_done=self._done_hook(held, inner))

        guarded = GuardedStream(connect, provider=self.provider, model=self.name)
        return guarded

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def connect() -> Connected:
            held = await self._atake(messages, settings)
            inner = self.wrapped.astream(messages, **settings)
            try:
                await inner.__aenter__()
            except BaseException as exc:
                await aclose_quietly(inner)
                self._give_back(held, None, exc)
                raise
            attempts = stream_attempts(inner) or []
            return Connected(inner, aiter(inner), [], attempts, _NO_DEADLINE, on_done=self._done_hook(held, inner))

        return GuardedAsyncStream(connect, provider=self.provider, model=self.name)
