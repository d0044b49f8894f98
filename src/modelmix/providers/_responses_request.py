"""Request bodies for the Responses API (``POST {base}/responses``), sans-I/O.

The same `RequestContext` the chat codec gets becomes Responses ``input`` items: leading system
messages become ``instructions``, an assistant turn's tool calls become ``function_call`` (or
``custom_tool_call``) items and tool results their ``*_output`` items, image parts
``input_image``. Server-side state is opt-in: ``store`` is sent as false unless the caller's
``extra_body`` asks for it. So that a reasoning model keeps its train of thought all the same, its
reasoning comes back encrypted (``include: ["reasoning.encrypted_content"]``) and the items
travel on the assistant turn (`ReasoningState`) into the next request to the same model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .._codec import RequestContext
from .._exceptions import ConfigurationError
from .._messages import ImagePart, Message, TextPart, ToolCall
from ._openai_wire import encode_tool, encode_tool_choice
from ._reasoning_state import echoed_reasoning_items

__all__ = ["build_responses_body"]

_PASSTHROUGH = ("temperature", "top_p", "user", "parallel_tool_calls")
# Chat Completions settings the Responses API has no field for: refused before sending rather
# than dropped, so a call never silently means something else.
_NOT_ON_RESPONSES = ("stop", "seed", "presence_penalty", "frequency_penalty")


def build_responses_body(call: RequestContext, *, encrypted_reasoning: bool = True) -> dict[str, Any]:
    settings = call.settings
    for key in _NOT_ON_RESPONSES:
        if key in settings:
            raise ConfigurationError(
                f"the setting {key}= is not part of the Responses API (api='responses'); "
                "leave it out or use the model with api='chat'"
            )
    instructions, items = _input_items(call.messages, call.origin)
    body: dict[str, Any] = {"model": call.model, "input": items}
    if instructions:
        body["instructions"] = instructions
    for key in _PASSTHROUGH:
        if key in settings:
            body[key] = settings[key]  # type: ignore[literal-required]
    if "max_tokens" in settings:
        body["max_output_tokens"] = settings["max_tokens"]
    if settings.get("tools"):
        body["tools"] = [_function_tool(encode_tool(tool)) for tool in settings["tools"]]
    if "tool_choice" in settings:
        body["tool_choice"] = _flat_tool_choice(encode_tool_choice(settings["tool_choice"]))
    if "response_format" in settings:
        body["text"] = {"format": _text_format(settings["response_format"])}
    level = settings.get("reasoning")
    if level is not None and call.profile.reasoning is not None:
        # The Responses API takes effort in its own `reasoning` object whatever the chat control is.
        body["reasoning"] = {"effort": "none" if level == "off" else level}
    body["store"] = False
    if encrypted_reasoning and call.profile.reasoning is not None:
        # Only reasoning models take it (others answer 400), and only without stored state
        # does the reasoning need to travel in the conversation.
        body["include"] = ["reasoning.encrypted_content"]
    if call.stream:
        body["stream"] = True
    extra = settings.get("extra_body")
    if extra:
        body.update(extra)
    return body


def _input_items(messages: Sequence[Message], origin: str) -> tuple[str, list[dict[str, Any]]]:
    """``(instructions, input items)``: the system messages before the first other turn become
    the instructions; later ones stay in place as system items. An assistant turn's reasoning
    items (from `origin` only) go right before the turn's own items, where they were produced."""
    leading: list[str] = []
    items: list[dict[str, Any]] = []
    custom_calls = {call.id for m in messages for call in m.tool_calls if call.kind == "custom" and call.id}
    for message in messages:
        if message.role in ("system", "developer") and not items:
            leading.append(message.text)
        elif message.role == "tool":
            kind = "custom_tool_call_output" if message.tool_call_id in custom_calls else "function_call_output"
            items.append({"type": kind, "call_id": message.tool_call_id or "", "output": message.text})
        else:
            if message.reasoning_state is not None:
                items.extend(echoed_reasoning_items(message, origin))
            if message.content or not message.tool_calls:
                items.append({"role": message.role, "content": _content(message)})
            items.extend(_call_item(call) for call in message.tool_calls)
    return "\n\n".join(leading), items


def _content(message: Message) -> str | list[dict[str, Any]]:
    content = message.content
    if not isinstance(content, list):
        return content or ""
    output = message.role == "assistant"
    return [_part(part, output=output) for part in content]


def _part(part: TextPart | ImagePart, *, output: bool) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "output_text" if output else "input_text", "text": part.text}
    return {"type": "input_image", "image_url": part.as_url(), "detail": part.detail or "auto"}


def _call_item(call: ToolCall) -> dict[str, Any]:
    if call.kind == "custom":
        return {"type": "custom_tool_call", "call_id": call.id or "", "name": call.name, "input": call.raw_arguments}
    arguments = call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)
    return {"type": "function_call", "call_id": call.id or "", "name": call.name, "arguments": arguments}


def _function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Chat's ``{"type": "function", "function": {...}}`` flattened to Responses'
    ``{"type": "function", "name": ...}``; hosted and custom tools pass as given."""
    function = tool.get("function")
    if tool.get("type") == "function" and isinstance(function, Mapping):
        return {"type": "function", **function}
    return tool


def _flat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def _text_format(fmt: Any) -> dict[str, Any]:
    """``text.format``: JSON mode, a JSON schema (a pydantic model, or chat's ``json_schema``
    object flattened), or plain text."""
    if fmt == "json":
        return {"type": "json_object"}
    if fmt == "text":
        return {"type": "text"}
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return {"type": "json_schema", "name": fmt.__name__, "schema": fmt.model_json_schema()}
    if isinstance(fmt, Mapping):
        wrapper = fmt.get("json_schema")
        if fmt.get("type") == "json_schema" and isinstance(wrapper, Mapping):
            return {"type": "json_schema", **wrapper}
        return dict(fmt)
    raise ConfigurationError(
        f"response_format {fmt!r} is not supported: use 'json', a JSON-schema dict or a pydantic model class"
    )
