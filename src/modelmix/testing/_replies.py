"""What a fake model or server answers (`FakeReply`), how a script of answers is served in turn,
and the OpenAI-style chunks a streamed answer is made of — shared by `FunctionModel` and
`FakeOpenAIServer`, so both fakes misbehave the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["FakeReply", "content_chunks", "scripted", "usage_of"]


@dataclass(frozen=True)
class FakeReply:
    """What a fake answers: text and/or tool calls (``{"name": ..., "arguments": {...}}``), and
    how the answer misbehaves — latency, an error status with headers, a dropped stream:

    ```python
    FakeReply("Hello!")                                          # a plain answer
    FakeReply("slow down", status=429, headers={"retry-after": "2"})  # a typed RateLimitError
    FakeReply("late", delay=30.0)                                # 30 s before the first byte
    FakeReply("Hello, wor", drop_after=2)                        # the stream breaks after 2 chunks
    ```
    """

    text: str = ""
    tool_calls: list[Mapping[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: int = 200
    """An error status answers with an OpenAI-style error body carrying `text` as the message;
    the caller gets the same typed error (`RateLimitError`, `ServerError`...) a real server's
    status gives, with retry hints read from `headers`."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers: ``retry-after``/``retry-after-ms`` on an error, ``x-request-id``..."""
    delay: float = 0.0
    """Seconds before the answer starts (time to first byte). A call whose ``timeout`` is shorter
    fails with a read-timeout `TransportError` when it runs out, as against a real server."""
    chunk_delay: float = 0.0
    """Streams: seconds between two chunks."""
    drop_after: int | None = None
    """Cut the connection after this many content chunks of a stream (0: before any content,
    which a fallback chain routes around; later: a `StreamInterruptedError` with the partial
    text). A non-streamed answer is cut before anything is sent."""
    reasoning: str = ""
    """What the model thought, sent before the answer: as ``reasoning_content`` on chat
    completions (as DeepSeek and vLLM send it), as a reasoning item with this text as its summary
    on the Responses API — carrying fake ``encrypted_content`` when the request asked for it
    (``include: ["reasoning.encrypted_content"]``), so a test can see it come back next turn."""


Answer = TypeVar("Answer")


def scripted(replies: Sequence[Answer]) -> Callable[..., Answer]:
    """Answers `replies` in turn, the last one repeating."""
    if not replies:
        raise ValueError("an empty list of replies gives the fake nothing to answer")
    queue = list(replies)

    def next_reply(*_args: object) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return next_reply


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def finish_reason_of(reply: FakeReply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def usage_of(reply: FakeReply, messages: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The reply's token counts, or a rough count of words when it gives none."""
    prompt = reply.input_tokens
    if prompt is None:
        words = sum(len(str(m.get("content", "")).split()) for m in messages)
        prompt = words + 3 * len(messages)
    completion = reply.output_tokens if reply.output_tokens is not None else max(1, len(reply.text.split()))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def tool_call_payload(index: int, call: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_fake_{index}",
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
    }


def content_chunks(
    reply: FakeReply, model: str, parts: int, usage: dict[str, int] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat-completion chunks of a streamed `reply`: (content chunks, closing chunks).

    A dropped stream sends the first `drop_after` content chunks and none of the closing ones.
    """
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    content = [chunk({"role": "assistant", "content": ""})]
    content += [chunk({"reasoning_content": piece}) for piece in _split(reply.reasoning, parts)]
    content += [chunk({"content": piece}) for piece in _split(reply.text, parts)]
    content += [
        chunk({"tool_calls": [{"index": index, **tool_call_payload(index, call)}]})
        for index, call in enumerate(reply.tool_calls)
    ]
    closing = [chunk({}, finish_reason_of(reply))]
    if usage is not None:
        closing.append({**base, "choices": [], "usage": usage})
    return content, closing


def kept_chunks(reply: FakeReply, content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks sent before a drop: the role chunk carries no content, so it always goes."""
    if reply.drop_after is None:
        return content
    return content[: 1 + max(reply.drop_after, 0)]
