"""Message content in the GenAI conventions' JSON shape, for opt-in capture and content hooks.

Only called when the user asked for content (capture on, or a content hook): the prompt and the
answer never reach a span, event, metric or log otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from .._exceptions import ModelMixError
from .._messages import ImagePart, Message, ToolCall, to_messages
from .._observe import CallInfo

__all__ = ["CAPTURE_ENV", "ContentHook", "capture_from_env", "input_messages", "output_messages"]

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

ContentHook = Callable[[CallInfo, list[dict[str, Any]], list[dict[str, Any]]], "str | None"]
"""Called with (the call, its input messages, its output messages) in the conventions' shape;
returns a reference to where it stored them (recorded as ``modelmix.content.reference``) or None."""

_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})


def capture_from_env() -> bool:
    """The standard switch: ``true`` (or ``SPAN_ONLY`` / ``SPAN_AND_EVENT``) turns capture on."""
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in _ON


def _parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, str):
        if content:
            parts.append({"type": "text", "content": content})
    elif content is not None:
        for part in content:
            if isinstance(part, ImagePart):
                # A URL is kept; raw bytes are not inlined into telemetry.
                parts.append(
                    {"type": "uri", "modality": "image", "uri": part.url}
                    if part.url
                    else {"type": "blob", "modality": "image"}
                )
            else:
                parts.append({"type": "text", "content": part.text})
    if message.role == "tool":
        return [{"type": "tool_call_response", "id": message.tool_call_id, "response": message.text}]
    parts.extend(_tool_call(call) for call in message.tool_calls)
    return parts


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}


def input_messages(call: CallInfo) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, the other input messages) of `call`."""
    try:
        messages = to_messages(call.messages)
    except ModelMixError:
        return [], []
    system: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            system.extend(_parts(message))
        else:
            rest.append({"role": message.role, "parts": _parts(message)})
    return system, rest


def output_messages(call: CallInfo) -> list[dict[str, Any]]:
    response = call.response
    if response is None:
        return []
    reason = response.finish_reason or "stop"
    return [{"role": "assistant", "parts": _parts(response.message), "finish_reason": str(reason)}]


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
