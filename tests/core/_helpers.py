"""Helpers for the core tests: one driver API over the sync and async paths, chunked bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from modelmix import ChatResponse, Model, StreamEvent
from modelmix._streaming import AsyncStream, Stream
from modelmix.providers import Provider

CANARY_KEY = "sk-CANARY-0123456789abcdef"
"""A fake key that must never show up anywhere a user or a log could see it."""

Mode = Literal["sync", "async"]
Handler = Callable[[httpx.Request], httpx.Response]


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in the given pieces, on both the sync and the async client."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = list(chunks)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def sse_body(*payloads: dict[str, Any] | str, done: bool = True) -> bytes:
    """An SSE body: one ``data:`` event per payload (dicts are JSON-encoded), then ``[DONE]``."""
    lines = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode("utf-8")


def per_event(body: bytes) -> list[bytes]:
    """The body split into one network chunk per SSE event."""
    return [piece + b"\n\n" for piece in body.split(b"\n\n") if piece]


def sse_response(
    chunks: Sequence[bytes] | bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    pieces = [chunks] if isinstance(chunks, bytes) else list(chunks)
    return httpx.Response(
        status,
        headers={"content-type": "text/event-stream", "x-request-id": "req-test", **(headers or {})},
        stream=Chunks(pieces),
    )


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One OpenAI chat.completion.chunk."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def completion(text: str = "Hello!", *, model: str = "gpt-4o-mini-2024-07-18") -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }


@dataclass(frozen=True)
class Driver:
    """Runs the same test through `chat`/`stream` or `achat`/`astream`."""

    mode: Mode

    async def chat(self, model: Model, messages: Any, **settings: Any) -> ChatResponse:
        if self.mode == "sync":
            return model.chat(messages, **settings)
        return await model.achat(messages, **settings)

    async def events(
        self, model: Model, messages: Any = "hi", **settings: Any
    ) -> tuple[list[StreamEvent], ChatResponse]:
        """Every event of a stream, and the final response."""
        if self.mode == "sync":
            with model.stream(messages, **settings) as s:
                events = list(s)
            return events, s.response
        async with model.astream(messages, **settings) as a:
            events = [event async for event in a]
        return events, a.response

    async def text_deltas(self, model: Model, messages: Any = "hi") -> tuple[list[str], ChatResponse]:
        if self.mode == "sync":
            with model.stream(messages) as s:
                deltas = list(s.text_deltas())
            return deltas, s.response
        async with model.astream(messages) as a:
            deltas = [d async for d in a.text_deltas()]
        return deltas, a.response

    async def until_done(self, model: Model, messages: Any = "hi") -> ChatResponse:
        if self.mode == "sync":
            with model.stream(messages) as s:
                return s.until_done()
        async with model.astream(messages) as a:
            return await a.until_done()

    async def open_and_peek(self, model: Model, messages: Any = "hi") -> Stream | AsyncStream:
        """Enter the stream, check `.response` is not available yet, read one event, leave early."""
        if self.mode == "sync":
            with model.stream(messages) as s:
                next(iter(s))
            return s
        async with model.astream(messages) as a:
            await a.__aiter__().__anext__()
        return a

    async def enter(self, model: Model, messages: Any = "hi") -> None:
        """Only open the stream (raises what opening raises)."""
        if self.mode == "sync":
            with model.stream(messages):
                pass
        else:
            async with model.astream(messages):
                pass


def provider(name: str, *, query: dict[str, str] | None = None, **options: Any) -> Provider:
    """A bare `Provider` registered as `name`, configured with connection `options`."""

    class _Bare(Provider):
        def query(self) -> dict[str, str] | None:
            return query

    _Bare.name = name
    return _Bare(**options)
