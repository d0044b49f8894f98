"""Folding stream events into the final `ChatResponse`, and the reverse (a complete response as the
events an equivalent stream would have produced). Pure data; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._events import ContentFilterEvent, FinishEvent, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta, UsageEvent
from ._messages import Message, ToolCall
from ._response import ChatResponse, Usage

if TYPE_CHECKING:
    from ._events import StreamEvent

__all__ = ["StreamAccumulator", "events_from_response"]


@dataclass
class _ToolCallParts:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)
    custom: bool = False


class StreamAccumulator:
    """Folds stream events into the final `ChatResponse`."""

    __slots__ = (
        "_filter",
        "_prompt_filter",
        "_reasoning",
        "_refusal",
        "_summary",
        "_text",
        "_tools",
        "finish_reason",
        "n_events",
        "usage",
    )

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._summary: list[str] = []
        self._refusal: list[str] = []
        self._tools: dict[int, _ToolCallParts] = {}
        self._filter: dict[str, Any] | None = None
        self._prompt_filter: list[dict[str, Any]] | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.n_events = 0

    def add(self, event: StreamEvent) -> None:
        self.n_events += 1
        if type(event) is TextDelta:  # most events: checked first, and exactly
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            parts = self._tools.get(event.index)
            if parts is None:
                parts = self._tools[event.index] = _ToolCallParts()
            # id and name come from the first delta that carries them; repeats are not appended.
            if parts.id is None and event.id is not None:
                parts.id = event.id
            if parts.name is None and event.name:
                parts.name = event.name
            if event.arguments:
                parts.arguments.append(event.arguments)
            if event.kind == "custom":
                parts.custom = True
        elif isinstance(event, ReasoningDelta):
            (self._summary if event.summary else self._reasoning).append(event.text)
        elif isinstance(event, FinishEvent):
            self.finish_reason = event.finish_reason
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        elif isinstance(event, RefusalDelta):
            self._refusal.append(event.text)
        elif isinstance(event, ContentFilterEvent):
            if event.source == "prompt":
                self._prompt_filter = [*(self._prompt_filter or []), event.results]
            else:
                self._filter = {**(self._filter or {}), **event.results}

    @property
    def text(self) -> str:
        return "".join(self._text)

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=parts.id, name=parts.name or "", raw_arguments="".join(parts.arguments), kind="custom")
            if parts.custom
            else ToolCall.from_raw(parts.id, parts.name or "", "".join(parts.arguments))
            for _, parts in sorted(self._tools.items())
        ]

    def build(self, *, provider: str, model: str | None, request_id: str | None, latency: float) -> ChatResponse:
        tool_calls = self.tool_calls()
        finish = self.finish_reason
        # Some backends end a tool-calling turn with "stop": the calls are what matters.
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        text = self.text
        message = Message(role="assistant", content=text if text or not tool_calls else None, tool_calls=tool_calls)
        return ChatResponse(
            message=message,
            finish_reason=finish,
            usage=self.usage,
            model=model,
            provider=provider,
            request_id=request_id,
            latency=latency,
            reasoning="".join(self._summary or self._reasoning) or None,
            reasoning_text="".join(self._reasoning) or None,
            refusal="".join(self._refusal) or None,
            content_filter_results=self._filter,
            prompt_filter_results=self._prompt_filter,
        )


def events_from_response(response: ChatResponse) -> list[StreamEvent]:
    """The events an equivalent stream would have produced (for servers that answer a stream
    request with a plain JSON body)."""
    events: list[StreamEvent] = []
    if response.prompt_filter_results:
        events.extend(ContentFilterEvent(results=r, source="prompt") for r in response.prompt_filter_results)
    if response.reasoning_text:
        events.append(ReasoningDelta(response.reasoning_text))
    if response.reasoning and response.reasoning != response.reasoning_text:
        events.append(ReasoningDelta(response.reasoning, summary=True))
    if response.text:
        events.append(TextDelta(response.text))
    if response.refusal:
        events.append(RefusalDelta(response.refusal))
    for index, call in enumerate(response.tool_calls):
        events.append(
            ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.raw_arguments, kind=call.kind)
        )
    if response.content_filter_results:
        events.append(ContentFilterEvent(results=response.content_filter_results))
    if response.finish_reason is not None:
        events.append(FinishEvent(response.finish_reason))
    if response.usage is not None:
        events.append(UsageEvent(response.usage))
    return events
