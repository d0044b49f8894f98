"""The typed events a stream yields (`TextDelta`, `ToolCallDelta`, `UsageEvent`...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from ._response import FinishReason, Usage

__all__ = [
    "CONTENT_EVENTS",
    "ContentFilterEvent",
    "FinishEvent",
    "PartialOutput",
    "ReasoningDelta",
    "RefusalDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "UsageEvent",
]

# Stream events are small, hot-path objects: slotted dataclasses rather than pydantic models.


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's visible reasoning, where a server streams it separately.

    `summary` is True for a reasoning *summary* (OpenAI's Responses API), False for the raw
    reasoning text (``reasoning_content``, ``thinking``, Open Responses ``reasoning_text``)."""

    text: str
    type: Literal["reasoning"] = "reasoning"
    summary: bool = False


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A piece of the model's refusal to answer, where the server streams it apart from the text."""

    text: str
    type: Literal["refusal"] = "refusal"


@dataclass(frozen=True, slots=True)
class PartialOutput:
    """Structured output so far (``stream(..., output=...)``): the JSON value the text received so
    far determines, as plain dicts, lists and scalars. Sent each time it grows; the validated
    object is on the final response's ``output``."""

    value: Any
    type: Literal["partial_output"] = "partial_output"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """Part of a tool call: `id`/`name` on the first delta of a call, then argument fragments.

    `kind` is ``"custom"`` for a free-form (custom) tool, whose input is raw text, not JSON."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call"] = "tool_call"
    kind: Literal["function", "custom"] = "function"


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


StreamEvent = Union[
    TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta, UsageEvent, ContentFilterEvent, FinishEvent, PartialOutput
]
"""Everything a stream yields; match on the class or on ``event.type``."""

CONTENT_EVENTS = (TextDelta, ReasoningDelta, ToolCallDelta, RefusalDelta)
"""Events that carry answer content: the first one to reach the caller is the commit point."""
