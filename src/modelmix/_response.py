"""What a call returns: `ChatResponse`, `Usage`, `Attempt`, and the typed stream events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Message, ToolCall

__all__ = [
    "Attempt",
    "ChatResponse",
    "ContentFilterEvent",
    "FinishEvent",
    "FinishReason",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "Usage",
    "UsageEvent",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
"""Normalised finish reasons. Unknown values from a server are kept as they were sent."""


class Usage(BaseModel):
    """Token counts for one call.

    `cached_tokens` and `reasoning_tokens` are None where the server did not report them.
    `estimated` is True when modelmix counted tokens itself because the server sent no usage.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Attempt(BaseModel):
    """One try at one model, as recorded by retries and fallback chains."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    model: str
    provider: str
    host: str | None = None
    status: int | None = None
    phase: str | None = None
    elapsed: float = 0.0
    retry_no: int = 0
    request_id: str | None = None
    error: str | None = None
    """The error class name when the attempt failed; None when it answered."""


class ChatResponse(BaseModel):
    """A complete answer.

    `text` is the assistant's text (empty when it only called tools); `message` is the full
    assistant turn, ready to append to the conversation.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    message: Message
    finish_reason: FinishReason | str | None = None
    usage: Usage | None = None
    model: str | None = None
    """The model that answered, as the server named it (e.g. ``gpt-4o-mini-2024-07-18``)."""
    provider: str
    request_id: str | None = None
    latency: float = 0.0
    """Seconds from sending the request to the complete answer."""
    reasoning: str | None = None
    content_filter_results: dict[str, Any] | None = None
    """Per-choice content-filter annotations where the provider sends them (Azure)."""
    prompt_filter_results: list[dict[str, Any]] | None = None
    cost: float | None = None
    """Cost in USD where the model's prices are known; None otherwise."""
    attempts: list[Attempt] = Field(default_factory=list)
    raw: dict[str, Any] | None = Field(default=None, repr=False)
    """The decoded response body (non-streaming calls), for fields modelmix does not model."""

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls

    @property
    def content_filtered(self) -> bool:
        """True when a content filter cut or annotated this answer as filtered."""
        if self.finish_reason == "content_filter":
            return True
        results = self.content_filter_results or {}
        return any(isinstance(v, dict) and v.get("filtered") for v in results.values())


# Stream events are small, hot-path objects: slotted dataclasses rather than pydantic models.


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's visible reasoning, where a server streams it separately."""

    text: str
    type: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """Part of a tool call: `id`/`name` on the first delta of a call, then argument fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Token usage, usually at the end of a stream."""

    usage: Usage
    type: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class ContentFilterEvent:
    """Content-filter annotations for the prompt or the answer (Azure)."""

    results: dict[str, Any]
    source: Literal["prompt", "completion"] = "completion"
    type: Literal["content_filter"] = "content_filter"


@dataclass(frozen=True, slots=True)
class FinishEvent:
    """The model finished; the stream may still carry usage after this."""

    finish_reason: FinishReason | str
    type: Literal["finish"] = "finish"


StreamEvent = Union[TextDelta, ReasoningDelta, ToolCallDelta, UsageEvent, ContentFilterEvent, FinishEvent]
"""Everything a stream yields; match on the class or on ``event.type``."""

CONTENT_EVENTS = (TextDelta, ReasoningDelta, ToolCallDelta)
"""Events that carry answer content: the first one to reach the caller is the commit point."""
