"""SSE bytes of a streamed Responses call → the same typed events as a chat stream, sans-I/O.

The event's type is read from its JSON ``type`` (the ``event:`` line may come before or after
``data:``, as Bedrock sends it, or not at all); comment lines (OpenRouter) and ``data: [DONE]``
are ignored. The stream is complete at its terminal event: ``response.completed`` or
``response.incomplete`` (a truncation: finish reason ``"length"`` / ``"content_filter"``);
``response.failed`` and ``error`` events raise typed errors. A tool call's arguments stream as
`ToolCallDelta` fragments numbered by call, in order of appearance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._events import FinishEvent, ReasoningDelta, RefusalDelta, TextDelta, ToolCallDelta, UsageEvent
from .._exceptions import InBandStreamError
from .._messages import ReasoningState
from .._sse import DEFAULT_MAX_EVENT, DEFAULT_MAX_LINE
from ._error_bodies import error_info, typed_error
from ._openai_wire import SSEJSONParser, parse_usage
from ._reasoning_state import reasoning_item, with_state
from ._responses_wire import CLIENT_CALL_ITEMS, failed_status, finish_reason_of
from ._wire_fields import MalformedAnswer, text_field

if TYPE_CHECKING:
    from .._events import StreamEvent
    from .._response import ChatResponse

__all__ = ["ResponsesStreamParser"]

_TERMINAL = ("response.completed", "response.incomplete")


class ResponsesStreamParser(SSEJSONParser):
    """Responses SSE → `TextDelta`, `ReasoningDelta`, `RefusalDelta`, `ToolCallDelta`,
    `UsageEvent`, `FinishEvent`."""

    done_sentinel = False  # the stream ends at response.completed / response.incomplete

    def __init__(
        self, *, origin: str = "", max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT
    ) -> None:
        super().__init__(max_line=max_line, max_event=max_event)
        self._origin = origin
        self._reasoning_items: list[dict[str, Any]] = []  # what the next turn sends back
        self._calls: dict[int, int] = {}  # output_index → call number
        self._streamed_arguments: set[int] = set()  # calls whose arguments came as deltas
        self._summary_part: tuple[int, int] | None = None  # the summary part being streamed

    def _on_payload(self, payload: Mapping[str, Any], event_type: str | None, out: list[StreamEvent]) -> None:
        kind = payload.get("type") or event_type
        if kind in ("response.output_text.delta", "response.refusal.delta", "response.reasoning_text.delta"):
            delta = text_field(payload, "delta", "delta") or ""
            if delta:
                out.append(_DELTAS[kind](delta))
        elif kind == "response.reasoning_summary_text.delta":
            self._summary_delta(payload, out)
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            index = self._call_number(payload.get("output_index"))
            self._streamed_arguments.add(index)
            custom = kind == "response.custom_tool_call_input.delta"
            arguments = text_field(payload, "delta", "delta") or ""
            out.append(ToolCallDelta(index=index, arguments=arguments, kind="custom" if custom else "function"))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._on_item(payload, done=kind == "response.output_item.done", out=out)
        elif kind in ("response.created", "response.in_progress"):
            self._note_model(payload.get("response"))
        elif kind in _TERMINAL:
            self._finish(payload.get("response"), out)
        elif kind in ("response.failed", "error"):
            raise self._in_band_error(payload)

    def _summary_delta(self, payload: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = text_field(payload, "delta", "delta") or ""
        part = (_int(payload.get("output_index")), _int(payload.get("summary_index")))
        if self._summary_part is not None and part != self._summary_part and delta:
            delta = "\n\n" + delta  # summary parts read as paragraphs, as in a complete response
        if delta:
            self._summary_part = part
            out.append(ReasoningDelta(delta, summary=True))

    def _call_number(self, output_index: Any) -> int:
        position = _int(output_index)
        number = self._calls.get(position)
        if number is None:
            number = self._calls[position] = len(self._calls)
        return number

    def completed(self, response: ChatResponse) -> ChatResponse:
        if not self._reasoning_items:
            return response
        return with_state(response, ReasoningState(origin=self._origin, items=self._reasoning_items))

    def _on_item(self, payload: Mapping[str, Any], *, done: bool, out: list[StreamEvent]) -> None:
        item = payload.get("item")
        if done and self._origin and isinstance(item, Mapping) and item.get("type") == "reasoning":
            kept = reasoning_item(item)  # whole once done: the encrypted content comes only then
            if kept is not None:
                self._reasoning_items.append(kept)
            return
        if not isinstance(item, Mapping) or item.get("type") not in CLIENT_CALL_ITEMS:
            return  # messages and reasoning stream as deltas; hosted tools ran on the server
        position = _int(payload.get("output_index"))
        known = position in self._calls
        index = self._call_number(position)
        custom = item.get("type") == "custom_tool_call"
        kind: Literal["function", "custom"] = "custom" if custom else "function"
        call_id = text_field(item, "call_id", "item.call_id")
        name = text_field(item, "name", "item.name") or None
        # Arguments that never streamed as deltas arrive whole with the item (when it is done).
        whole = "" if index in self._streamed_arguments else str(item.get("input" if custom else "arguments") or "")
        if done and known and not whole:
            return
        if whole:
            self._streamed_arguments.add(index)
        out.append(ToolCallDelta(index=index, id=call_id, name=name, arguments=whole, kind=kind))

    def _note_model(self, response: Any) -> None:
        if self._model is None and isinstance(response, Mapping) and isinstance(response.get("model"), str):
            self._model = response["model"] or None
            self._note_response_id(response.get("id"))

    def _finish(self, response: Any, out: list[StreamEvent]) -> None:
        self._done = True
        if not isinstance(response, Mapping):
            raise MalformedAnswer("response", "an object", response)
        self._model = text_field(response, "model", "response.model") or self._model
        self._note_response_id(response.get("id"))
        usage = parse_usage(response.get("usage"))
        if usage is not None:
            out.append(UsageEvent(usage))
        finish = finish_reason_of(response, bool(self._calls))
        if finish:
            out.append(FinishEvent(finish))

    def _in_band_error(self, payload: Mapping[str, Any]) -> InBandStreamError:
        response = payload.get("response")
        source = response if isinstance(response, Mapping) and response.get("error") else payload
        info = error_info(source, fallback="the server reported an error inside the stream")
        mapped = typed_error(failed_status(info.type, info.code), info, {}, self.context)
        mapped.phase = "pre_commit_stream"  # still inside the builder: nobody has seen it yet
        message = f"error inside the stream: {self.context.redact(info.message)}"
        where = self.context.fields(0)
        return InBandStreamError(message, mapped=mapped, code=info.code, error_type=info.type, status=None, **where)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


_DELTAS: dict[str, Any] = {
    "response.output_text.delta": TextDelta,
    "response.refusal.delta": RefusalDelta,
    "response.reasoning_text.delta": ReasoningDelta,
}
