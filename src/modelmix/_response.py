"""What a call returns: `ChatResponse`, `Usage` and `Attempt` (stream events are in `_events`)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ._exact import EXACT
from ._messages import Message, ToolCall

__all__ = [
    "Attempt",
    "ChatResponse",
    "Costed",
    "FinishReason",
    "Usage",
    "copied_with",
    "summed_cost",
    "summed_usage",
    "with_attempts",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
"""Normalised finish reasons. Unknown values from a server are kept as they were sent."""


class Usage(BaseModel):
    """Token counts for one call.

    As the vendors define them: `input_tokens` counts every prompt token, and `cached_tokens`
    (read from the provider's prompt cache) and `cache_write_tokens` (written to it) are parts of
    it; `output_tokens` counts every generated token, `reasoning_tokens` included. The parts are
    None where the server did not report them. `estimated` is True when modelmix counted tokens
    itself because the server sent no usage.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    estimated: bool = False
    cache_write_tokens: int | None = None

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
    """The error class name when the attempt failed, ``"lost_hedge"`` for a hedged request whose
    rival answered first; None when it answered."""
    usage: Usage | None = None
    """Tokens the attempt consumed, where known (a failed attempt knows them when the answer
    arrived and was then rejected: invalid structured output, a stream cut after its usage)."""
    cost: Decimal | None = None
    """USD cost of `usage`, where the model's prices are known."""


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
    """The model's visible reasoning: its reasoning summary where the server gives one (OpenAI's
    Responses API), else the raw reasoning text."""
    reasoning_text: str | None = None
    """The raw reasoning text alone, where the server sends it (``reasoning_content``, ``thinking``,
    Open Responses ``reasoning_text``), kept apart from any summary."""
    refusal: str | None = None
    """The model's refusal to answer, where the server reports it apart from the text (OpenAI)."""
    output: Any = Field(default=None, repr=False)
    """The validated object when the call asked for structured output (``output=...``); None otherwise."""
    content_filter_results: dict[str, Any] | None = None
    """Per-choice content-filter annotations where the provider sends them (Azure)."""
    prompt_filter_results: list[dict[str, Any]] | None = None
    cost: Decimal | None = None
    """USD cost of this answer's `usage`, exact; None when the model's prices are unknown (models
    run on your own hardware cost 0). Structured-output re-asks are summed in (see `total_cost`)."""
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
    def total_usage(self) -> Usage | None:
        """Tokens of the whole call: this answer's `usage` plus every failed or lost attempt's
        (retries, fallbacks, hedges) that reported usage."""
        spent = [a.usage for a in self.attempts if a.error is not None]
        return summed_usage([self.usage, *spent]) if spent else self.usage

    @property
    def total_cost(self) -> Decimal | None:
        """USD cost of the whole call: `cost` plus every failed or lost attempt's. None when a
        part that reported usage has no known price (a total that left it out would understate)."""
        spent = [a for a in self.attempts if a.error is not None]
        return summed_cost([self, *spent]) if spent else self.cost

    @property
    def content_filtered(self) -> bool:
        """True when a content filter cut or annotated this answer as filtered."""
        if self.finish_reason == "content_filter":
            return True
        results = self.content_filter_results or {}
        return any(isinstance(v, dict) and v.get("filtered") for v in results.values())


def with_attempts(response: ChatResponse, attempts: list[Attempt]) -> ChatResponse:
    """``response.model_copy(update={"attempts": attempts})`` at a third of its cost: every call
    through a retrying model or a chain ends here (see `copied_with`)."""
    return copied_with(response, {"attempts": attempts})


def copied_with(response: ChatResponse, update: dict[str, Any]) -> ChatResponse:
    """``response.model_copy(update=update)`` at a third of its cost, for the fields every call
    fills in after parsing. The values are already validated, so the copy is assembled the way
    pydantic's own shallow copy does it (a test holds the two equal field by field)."""
    cls = type(response)
    copied = cls.__new__(cls)
    fields = response.__dict__.copy()
    fields.update(update)
    object.__setattr__(copied, "__dict__", fields)
    object.__setattr__(copied, "__pydantic_fields_set__", response.__pydantic_fields_set__ | update.keys())
    extra, private = response.__pydantic_extra__, response.__pydantic_private__
    object.__setattr__(copied, "__pydantic_extra__", None if extra is None else dict(extra))
    object.__setattr__(copied, "__pydantic_private__", None if private is None else dict(private))
    return copied


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
        cache_write_tokens=optional_sum([usage.cache_write_tokens for usage in reported]),
    )


class Costed(Protocol):
    """Anything with a usage and its cost: a `ChatResponse`, an `Attempt`."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def cost(self) -> Decimal | None: ...


def summed_cost(parts: Iterable[Costed]) -> Decimal | None:
    """The cost of several calls added up, exactly. A part that reported no usage adds nothing;
    a part that reported usage without a known cost makes the sum unknown (None), because a sum
    without it would understate what was spent. None as well when no part reported anything."""
    total: Decimal | None = None
    for part in parts:
        if part.cost is None:
            if part.usage is not None:
                return None
            continue
        total = part.cost if total is None else EXACT.add(total, part.cost)
    return total
