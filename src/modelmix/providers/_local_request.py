"""How a call's messages and settings reach llama-cpp-python's ``create_chat_completion`` (the
in-process ``local:`` backend): its message dicts, its ``response_format`` shape, the tool
choices it can enforce, and the options it accepts in ``extra_body``."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .._exceptions import ConfigurationError, UnsupportedCapabilityError
from .._messages import ImagePart, Message
from ._llama_runtime import import_llama_cpp
from ._openai_wire import encode_tool_choice as encode_openai_tool_choice

__all__ = ["check_extra", "encode_message", "encode_response_format", "encode_tool_choice"]


def encode_message(message: Message) -> dict[str, Any]:
    if isinstance(message.content, list) and any(isinstance(p, ImagePart) for p in message.content):
        raise ConfigurationError("the local backend is text-only: remove image parts or use a vision model server")
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role}
    # Chat templates concatenate content as a string; None would break them.
    out["content"] = message.text
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id or f"call_{index}",
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False),
                },
            }
            for index, call in enumerate(message.tool_calls)
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def encode_response_format(fmt: Any) -> dict[str, Any] | None:
    """llama-cpp-python takes ``{"type": "json_object", "schema": {...}}`` for both JSON modes."""
    if fmt == "text":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return {"type": "json_object", "schema": fmt.model_json_schema()}
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
            return {"type": "json_object", "schema": dict(fmt["json_schema"].get("schema") or {})}
        if fmt.get("type") == "json_object":
            return dict(fmt)
        return {"type": "json_object", "schema": dict(fmt)}
    raise ConfigurationError(f"response_format {fmt!r} is not supported: use 'json', a JSON schema or a pydantic model")


def encode_tool_choice(choice: Any, tools: list[dict[str, Any]], *, provider: str, model: str) -> Any:
    """llama-cpp-python constrains a named tool_choice with a grammar built from that tool's
    parameters, but leaves ``"required"`` to the model, and small models then answer in text.
    With one tool offered, "required" means that tool and is sent by name; with several there
    is no grammar for "one of them", so it is refused before generating."""
    encoded = encode_openai_tool_choice(choice)
    if encoded != "required" or not tools:
        return encoded
    if len(tools) == 1:
        return {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
    raise UnsupportedCapabilityError(
        f"{provider}:{model} cannot enforce tool_choice='required' among {len(tools)} tools (llama.cpp "
        "constrains a call only to one named tool); name the tool to call, e.g. tool_choice=my_function, "
        "or offer only that tool",
        capability="tool_choice",
        param="tool_choice",
        provider=provider,
        model=model,
    )


def check_extra(extra: Mapping[str, Any]) -> None:
    """``extra_body`` keys must be options ``create_chat_completion`` takes."""
    llama_cpp = import_llama_cpp()
    accepted = set(inspect.signature(llama_cpp.Llama.create_chat_completion).parameters) - {
        "self",
        "messages",
        "stream",
    }
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise ConfigurationError(
            f"extra_body key(s) {', '.join(map(repr, unknown))} are not llama.cpp sampling options; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
