"""The Responses API wire protocol (OpenAI, Azure OpenAI v1, Open Responses servers), sans-I/O.

A second protocol beside Chat Completions that yields the same `ChatResponse`, stream events and
errors, so chains mix the two freely. What differs on the wire and is folded away here:

- the answer is a list of output items: ``message`` (``output_text`` and ``refusal`` parts),
  ``reasoning`` (a *summary* and/or raw ``reasoning_text``), ``function_call`` and
  ``custom_tool_call`` (client tools), and hosted-tool items (``web_search_call`` …), which the
  server ran itself: they stay in ``raw`` and are never taken for calls of the caller's tools;
- ``status: "incomplete"`` is a truncation: its ``incomplete_details.reason`` becomes the finish
  reason (``"length"``, ``"content_filter"``), never a plain ``"stop"``;
- ``status: "failed"`` (or an ``error`` object in a 200 body) is a typed error, as in a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._codec import Reply, RequestContext
from .._exceptions import APIStatusError
from .._messages import Message, ReasoningState, ToolCall
from .._response import ChatResponse
from .._streaming import StreamParser
from ._error_bodies import error_from_body, error_in_ok_body, error_info, typed_error
from ._openai_wire import _status_for_in_band, parse_usage
from ._reasoning_state import reasoning_item
from ._responses_request import build_responses_body
from ._wire_fields import MalformedAnswer, decoded_body, list_field, mapping_field, text_field

__all__ = ["ResponsesCodec", "finish_reason_of", "response_from_body"]

CLIENT_CALL_ITEMS = ("function_call", "custom_tool_call")

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def finish_reason_of(response: Mapping[str, Any], has_calls: bool) -> str | None:
    """The chat-style finish reason of a response object's ``status``."""
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return _INCOMPLETE_REASONS.get(str(reason), str(reason or "length"))
    if status == "completed":
        return "tool_calls" if has_calls else "stop"
    return status if isinstance(status, str) else None


def tool_call_of(item: Mapping[str, Any], where: str) -> ToolCall:
    call_id = text_field(item, "call_id", f"{where}.call_id")
    name = text_field(item, "name", f"{where}.name") or ""
    if item.get("type") == "custom_tool_call":
        raw = text_field(item, "input", f"{where}.input") or ""
        return ToolCall(id=call_id, name=name, raw_arguments=raw, kind="custom")
    arguments = item.get("arguments")
    if arguments is not None and not isinstance(arguments, (str, Mapping)):
        raise MalformedAnswer(f"{where}.arguments", "a JSON string", arguments)
    return ToolCall.from_raw(call_id, name, arguments)


def _part_texts(parts: list[Any], kinds: tuple[str, ...], where: str) -> list[str]:
    texts = []
    for position, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise MalformedAnswer(f"{where}[{position}]", "an object", part)
        if part.get("type") in kinds:
            key = "refusal" if part.get("type") == "refusal" else "text"
            texts.append(text_field(part, key, f"{where}[{position}].{key}") or "")
    return texts


def response_from_body(data: Mapping[str, Any], origin: str = "") -> ChatResponse:
    """The answer a Responses body holds; `MalformedAnswer` or a pydantic `ValidationError`
    when it is not a valid one. Reasoning items the server can read back are kept on the message
    for `origin` (none without one)."""
    text: list[str] = []
    refusal: list[str] = []
    summary: list[str] = []
    reasoning_text: list[str] = []
    calls: list[ToolCall] = []
    kept: list[dict[str, Any]] = []
    for position, item in enumerate(list_field(data, "output", "output") or []):
        where = f"output[{position}]"
        if not isinstance(item, Mapping):
            raise MalformedAnswer(where, "an object", item)
        kind = item.get("type")
        if kind == "message":
            parts = list_field(item, "content", f"{where}.content") or []
            text.extend(_part_texts(parts, ("output_text",), f"{where}.content"))
            refusal.extend(_part_texts(parts, ("refusal",), f"{where}.content"))
        elif kind == "reasoning":
            reasoning = reasoning_item(item) if origin else None
            if reasoning is not None:
                kept.append(reasoning)
            summary.extend(
                t
                for t in _part_texts(
                    list_field(item, "summary", f"{where}.summary") or [], ("summary_text",), f"{where}.summary"
                )
                if t
            )
            reasoning_text.extend(
                _part_texts(
                    list_field(item, "content", f"{where}.content") or [], ("reasoning_text",), f"{where}.content"
                )
            )
        elif kind in CLIENT_CALL_ITEMS:
            calls.append(tool_call_of(item, where))
        # Hosted-tool items (web_search_call, file_search_call, …) ran on the server: left in raw.
    raw_text = "".join(reasoning_text) or None
    body_text = "".join(text)
    return ChatResponse(
        message=Message(
            role="assistant",
            content=body_text if body_text or not calls else None,
            tool_calls=calls,
            reasoning_state=ReasoningState(origin=origin, items=kept) if kept else None,
        ),
        finish_reason=finish_reason_of(data, bool(calls)),
        usage=parse_usage(data.get("usage")),
        model=text_field(data, "model", "model") or None,
        provider="",
        reasoning="\n\n".join(summary) or raw_text,
        reasoning_text=raw_text,
        refusal="".join(refusal) or None,
        content_filter_results=_content_filters(data),
        raw=dict(data),
    )


def _content_filters(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """Azure's ``content_filters`` list, as chat's per-choice results (``filtered`` when a filter
    blocked the answer), or a content-filter truncation."""
    entries = data.get("content_filters")
    results: dict[str, Any] = {}
    if isinstance(entries, list):
        for position, entry in enumerate(entries):
            if isinstance(entry, Mapping):
                blocked = bool(entry.get("blocked") or entry.get("filtered"))
                results[str(entry.get("source_type") or position)] = {**entry, "filtered": blocked}
    details = (
        mapping_field(data, "incomplete_details", "incomplete_details") if data.get("incomplete_details") else None
    )
    if details is not None and details.get("reason") == "content_filter":
        results.setdefault("response", {"filtered": True})
    return results or None


# Codes of a failed response that blame the request (a bad image, a rejected prompt): sending it
# again cannot help, so they map to 400 rather than to a server error.
_REQUEST_FAULT_MARKERS = ("invalid", "image", "unsupported", "empty_", "policy")


def failed_status(error_type: str | None, code: str | None) -> int:
    """The HTTP status a failed response's error would have had, so it retries like one."""
    if code and any(marker in code for marker in _REQUEST_FAULT_MARKERS):
        return 400
    return _status_for_in_band(error_type, code)


def failed_error(data: Mapping[str, Any], reply: Reply) -> APIStatusError:
    """The typed error of a ``failed`` response (or one carrying an ``error`` object)."""
    raw = data.get("error")
    info = error_info({"error": raw} if isinstance(raw, Mapping) else data, fallback="the response failed")
    return typed_error(failed_status(info.type, info.code), info, reply.headers, reply.context)


class ResponsesCodec:
    """Request building and response parsing for ``POST {base}/responses`` (`path`: where the
    server has it, relative to the base URL)."""

    def __init__(self, path: str = "responses", *, encrypted_reasoning: bool = True) -> None:
        self.chat_path = path
        self.encrypted_reasoning = encrypted_reasoning

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        return build_responses_body(call, encrypted_reasoning=self.encrypted_reasoning)

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        if not isinstance(data, Mapping) or not isinstance(data.get("output"), list):
            raise error_in_ok_body(data, reply, fallback="the server answered without any output")
        if data.get("status") == "failed" or isinstance(data.get("error"), Mapping):
            raise failed_error(data, reply)
        return decoded_body(lambda: response_from_body(data, reply.call.origin if reply.call else ""), reply)

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return error_from_body(body, reply)

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        from ._responses_stream import ResponsesStreamParser

        return ResponsesStreamParser(origin=call.origin if call is not None else "")
