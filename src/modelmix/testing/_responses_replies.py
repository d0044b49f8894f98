"""`FakeOpenAIServer` on ``POST /responses``: a Responses request seen as chat messages (so one
responder serves both protocols), and a `FakeReply` as a Responses object or its SSE events."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ._replies import FakeReply, _split, usage_of

__all__ = ["as_chat_request", "response_events", "response_object"]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def as_chat_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """`request` with the ``messages`` a chat request would have carried."""
    messages: list[dict[str, Any]] = []
    if request.get("instructions"):
        messages.append({"role": "system", "content": request["instructions"]})
    items = request.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        if "role" in item:
            messages.append({"role": item["role"], "content": _text(item.get("content"))})
        elif str(item.get("type", "")).endswith("_output"):
            messages.append(
                {"role": "tool", "content": str(item.get("output", "")), "tool_call_id": item.get("call_id")}
            )
    return {**request, "messages": messages}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return str(content or "")


def _usage(reply: FakeReply, request: Mapping[str, Any]) -> dict[str, int]:
    counts = usage_of(reply, as_chat_request(request)["messages"])
    return {
        "input_tokens": counts["prompt_tokens"],
        "output_tokens": counts["completion_tokens"],
        "total_tokens": counts["total_tokens"],
    }


def _calls(reply: FakeReply) -> list[dict[str, Any]]:
    return [
        {
            "type": "function_call",
            "id": f"fc_fake_{index}",
            "call_id": f"call_fake_{index}",
            "name": call["name"],
            "arguments": json.dumps(call.get("arguments", {})),
            "status": "completed",
        }
        for index, call in enumerate(reply.tool_calls)
    ]


def _reasoning(reply: FakeReply, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not reply.reasoning:
        return []
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": "rs_fake",
        "summary": [{"type": "summary_text", "text": reply.reasoning}],
    }
    include = request.get("include")
    if isinstance(include, list) and "reasoning.encrypted_content" in include:
        # Not encryption, only opaque to the reader: what matters is that it comes back intact.
        item["encrypted_content"] = "fake-" + base64.b64encode(reply.reasoning.encode("utf-8")).decode("ascii")
    return [item]


def response_object(reply: FakeReply, request: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The complete Responses object of `reply` (``incomplete`` for a ``length`` or
    ``content_filter`` finish)."""
    output: list[dict[str, Any]] = _reasoning(reply, request)
    if reply.text:
        part = {"type": "output_text", "text": reply.text, "annotations": []}
        output.append(
            {"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed", "content": [part]}
        )
    output += _calls(reply)
    reason = _INCOMPLETE.get(reply.finish_reason or "")
    return {
        "id": "resp_fake",
        "object": "response",
        "model": model,
        "status": "incomplete" if reason else "completed",
        "incomplete_details": {"reason": reason} if reason else None,
        "error": None,
        "output": output,
        "usage": _usage(reply, request),
    }


def response_events(
    reply: FakeReply, request: Mapping[str, Any], model: str, parts: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The SSE events of a streamed `reply`: (content events, closing events), as
    `content_chunks` gives them for chat."""
    final = response_object(reply, request, model)
    started = {**final, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    content: list[dict[str, Any]] = [{"type": "response.created", "response": started}]
    reasoning = _reasoning(reply, request)
    for item in reasoning:
        content += [
            {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": piece}
            for piece in _split(reply.reasoning, parts)
        ]
        content.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    text_index = len(reasoning)
    content += [
        {"type": "response.output_text.delta", "output_index": text_index, "content_index": 0, "delta": piece}
        for piece in _split(reply.text, parts)
    ]
    first_call = text_index + (1 if reply.text else 0)
    for offset, item in enumerate(_calls(reply)):
        index = first_call + offset
        content.append({"type": "response.output_item.added", "output_index": index, "item": {**item, "arguments": ""}})
        content.append(
            {"type": "response.function_call_arguments.delta", "output_index": index, "delta": item["arguments"]}
        )
    terminal = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    return content, [{"type": terminal, "response": final}]
