"""What a call returns: `ChatResponse`, `Usage` and `Attempt` (stream events are in `_events`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Message, ToolCall

__all__ = [
    "Attempt",
    "ChatResponse",
    "FinishReason",
    "Usage",
    "summed_cost",
    "summed_usage",
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
    """The server tried: ``host`` or ``host:port`` (None for an in-process model)."""
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
    refusal: str | None = None
    """The model's refusal to answer, where the server reports it apart from the text (OpenAI)."""
    output: Any = Field(default=None, repr=False)
    """The validated object when the call asked for structured output (``output=...``); None otherwise."""
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


def summed_usage(usages: Iterable[Usage | None]) -> Usage | None:
    """The token counts of several calls added up (None when none reported usage)."""
    reported = [usage for usage in usages if usage is not None]
    if not reported:
        return None

    def optional_sum(values: list[int | None]) -> int | None:
        known = [value for value in values if value is not None]
        return sum(known) if known else None

    return Usage(
        input_tokens=sum(usage.input_tokens for usage in reported),
        output_tokens=sum(usage.output_tokens for usage in reported),
        cached_tokens=optional_sum([usage.cached_tokens for usage in reported]),
        reasoning_tokens=optional_sum([usage.reasoning_tokens for usage in reported]),
        estimated=any(usage.estimated for usage in reported),
    )


def summed_cost(costs: Iterable[float | None]) -> float | None:
    """The costs of several calls added up, over those whose cost is known (None when none is)."""
    known = [cost for cost in costs if cost is not None]
    return sum(known) if known else None
