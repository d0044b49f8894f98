"""Messages, content parts and tool calls, plus the helpers that build them.

Callers may pass a plain string, OpenAI-style dicts or these typed objects; `to_messages` turns any
of them into a list of `Message` so the codecs see one shape.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._exceptions import ConfigurationError

__all__ = [
    "ContentPart",
    "ImagePart",
    "Message",
    "MessagesInput",
    "ReasoningState",
    "Role",
    "TextPart",
    "ToolCall",
    "assistant",
    "image",
    "system",
    "to_messages",
    "tool_result",
    "user",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]


class TextPart(BaseModel):
    """A piece of text inside a message."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image: a URL (``https://`` or ``data:``) or raw bytes with their media type."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    type: Literal["image"] = "image"
    url: str | None = None
    data: bytes | None = Field(default=None, repr=False)
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None

    def as_url(self) -> str:
        """The image as a URL; bytes become a base64 ``data:`` URL."""
        if self.url is not None:
            return self.url
        if self.data is None:  # pragma: no cover - prevented by image()
            raise ConfigurationError("an image part needs a url or data")
        return f"data:{self.media_type or 'image/png'};base64,{base64.b64encode(self.data).decode('ascii')}"


ContentPart = Union[TextPart, ImagePart]


class ToolCall(BaseModel):
    """A call of one of your tools that the model asked for.

    `arguments` is the parsed JSON object; `raw_arguments` keeps the text as the model sent it
    (useful when the model produced invalid JSON: then `arguments` is empty and
    `arguments_error` says why).
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    id: str | None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str = ""
    arguments_error: str | None = None
    kind: Literal["function", "custom"] = "function"
    """``"custom"``: a free-form tool (OpenAI's Responses API) whose input is the raw text in
    `raw_arguments`, not a JSON object."""

    @classmethod
    def from_raw(cls, id: str | None, name: str, raw: str | Mapping[str, Any] | None) -> ToolCall:
        """Build from arguments sent as a JSON string (OpenAI) or as an object (Ollama)."""
        if raw is None or raw == "":
            return cls(id=id, name=name, arguments={}, raw_arguments=raw or "")
        if isinstance(raw, Mapping):
            return cls(id=id, name=name, arguments=dict(raw), raw_arguments=json.dumps(raw, ensure_ascii=False))
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            return cls(id=id, name=name, raw_arguments=raw, arguments_error=f"invalid JSON: {exc.msg}")
        except (ValueError, RecursionError):
            # JSON Python will not decode: an integer of thousands of digits, nesting too deep.
            return cls(id=id, name=name, raw_arguments=raw, arguments_error="JSON too large to decode")
        if not isinstance(parsed, dict):
            return cls(id=id, name=name, raw_arguments=raw, arguments_error="arguments are not a JSON object")
        return cls(id=id, name=name, arguments=parsed, raw_arguments=raw)

    def parse(self, tools: Sequence[Any]) -> Any:
        """The arguments validated against the tool of this name in `tools` (the list you passed
        as ``tools=``): a dict of keyword arguments for a function tool (``fn(**args)``), an
        instance for a pydantic model tool, the parsed object for a schema-only tool.

        Raises `ToolArgumentsError` (carrying `raw_arguments`) when the arguments are not valid
        JSON, do not fit the tool, or name a tool that was not given.
        """
        from ._tools import parse_tool_call

        return parse_tool_call(self, tools)


class ReasoningState(BaseModel):
    """Reasoning a server returned for itself alone, kept on the assistant turn it belongs to so
    that the next request of the conversation carries it back: the Responses API's encrypted
    reasoning items, Gemini's thought signatures, the ``reasoning_content`` DeepSeek wants back
    after a tool call, OpenRouter's ``reasoning_details``.

    It goes back only to the endpoint and model that produced it (`origin`); any other model (a
    fallback, another provider) gets the turn without it. You never build one: keep the
    assistant `Message` of a response in your history (``messages.append(response.message)``;
    the tool loop does this) and it travels with it, including through ``model_dump``/JSON.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    origin: str
    """``provider:model@host`` of the model that produced it."""
    items: list[dict[str, Any]] = Field(default_factory=list)
    """Responses API reasoning items (``type: reasoning`` with ``encrypted_content``), in order."""
    fields: dict[str, Any] = Field(default_factory=dict)
    """Fields of the assistant message to send back as they came (``reasoning_content``,
    ``reasoning_details``, ``extra_content``)."""
    call_fields: list[dict[str, Any]] = Field(default_factory=list)
    """Per tool call, by position, fields of that call to send back (``extra_content``)."""


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    role: Role
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    reasoning_state: ReasoningState | None = Field(default=None, repr=False)
    """Opaque reasoning the model that wrote this assistant turn wants back (`ReasoningState`)."""

    @property
    def text(self) -> str:
        """The text content (text parts joined); empty when there is none."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


MessagesInput = Union[str, Message, Mapping[str, Any], Sequence[Union[Message, Mapping[str, Any]]]]
"""Anything `chat` accepts as messages: a string (one user turn), a message, or a list of them."""


def system(text: str) -> Message:
    """A system message: instructions for the model."""
    return Message(role="system", content=text)


def user(*content: str | ContentPart) -> Message:
    """A user message from text and/or parts, e.g. ``user("What is this?", image(url=...))``."""
    if not content:
        raise ConfigurationError("user() needs some content, e.g. user('Hello')")
    if len(content) == 1 and isinstance(content[0], str):
        return Message(role="user", content=content[0])
    parts: list[ContentPart] = [TextPart(text=c) if isinstance(c, str) else c for c in content]
    return Message(role="user", content=parts)


def assistant(text: str | None = None, *, tool_calls: Sequence[ToolCall] = ()) -> Message:
    """An assistant turn, e.g. a previous answer or the tool calls it asked for."""
    return Message(role="assistant", content=text, tool_calls=list(tool_calls))


def tool_result(tool_call_id: str | None, content: str | Mapping[str, Any] | Sequence[Any]) -> Message:
    """The result of running a tool, answering the tool call with this id.

    Non-string results are sent as JSON.
    """
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return Message(role="tool", content=text, tool_call_id=tool_call_id)


def image(
    url: str | None = None,
    *,
    data: bytes | None = None,
    media_type: str | None = None,
    detail: Literal["auto", "low", "high"] | None = None,
) -> ImagePart:
    """An image content part from a URL or from bytes (give `media_type` with bytes)."""
    if (url is None) == (data is None):
        raise ConfigurationError("image() takes exactly one of url= or data=")
    if data is not None and media_type is None:
        media_type = _sniff_image_type(data)
    return ImagePart(url=url, data=data, media_type=media_type, detail=detail)


def _sniff_image_type(data: bytes) -> str:
    signatures = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}
    for magic, media_type in signatures.items():
        if data.startswith(magic):
            return media_type
    raise ConfigurationError("could not tell the image type from its bytes; pass media_type='image/png' (or jpeg...)")


def _message_from_mapping(raw: Mapping[str, Any]) -> Message:
    """Accept the OpenAI chat message shape (content parts, tool_calls with function objects)."""
    data: dict[str, Any] = dict(raw)
    content = data.get("content")
    if isinstance(content, list):
        data["content"] = [_part_from_mapping(p) for p in content]
    tool_calls = data.get("tool_calls")
    if tool_calls and not isinstance(tool_calls, (list, tuple)):
        raise ConfigurationError(f"tool_calls must be a list of tool calls, not {type(tool_calls).__name__}")
    if tool_calls:
        data["tool_calls"] = [_tool_call_from_mapping(c) for c in tool_calls]
    return Message.model_validate(data)


def _part_from_mapping(part: Any) -> ContentPart:
    if isinstance(part, (TextPart, ImagePart)):
        return part
    if isinstance(part, str):
        return TextPart(text=part)
    if isinstance(part, Mapping):
        kind = part.get("type")
        if kind == "text":
            return TextPart(text=str(part.get("text", "")))
        if kind == "image_url":
            spec = part.get("image_url")
            if isinstance(spec, Mapping):
                return ImagePart(url=str(spec.get("url")), detail=spec.get("detail"))
            return ImagePart(url=str(spec))
        if kind == "image":
            return ImagePart.model_validate(part)
    raise ConfigurationError(f"unsupported content part {part!r}: use text or image_url parts, or mm.image()")


def _tool_call_from_mapping(call: Any) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    if isinstance(call, Mapping):
        function = call.get("function")
        source = function if isinstance(function, Mapping) else call
        arguments = source.get("arguments")
        if arguments is not None and not isinstance(arguments, (str, Mapping)):
            raise ConfigurationError(
                f"a tool call's arguments must be a JSON string or a dict, not {type(arguments).__name__}: {call!r}"[
                    :300
                ]
            )
        return ToolCall.from_raw(call.get("id"), str(source.get("name", "")), arguments)
    raise ConfigurationError(f"unsupported tool call {call!r}")


def to_messages(messages: MessagesInput) -> list[Message]:
    """Normalise any accepted input into a list of `Message`."""
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    if isinstance(messages, Message):
        return [messages]
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence):
        raise ConfigurationError(
            f"messages must be a string, a message or a list of them, not {type(messages).__name__}"
        )
    result: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            result.append(item)
        elif isinstance(item, Mapping):
            try:
                result.append(_message_from_mapping(item))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ConfigurationError(f"messages[{index}] is not a valid message: {problems}") from None
        else:
            raise ConfigurationError(
                f"messages[{index}] is a {type(item).__name__}; use a dict like "
                "{'role': 'user', 'content': '...'} or mm.user('...')"
            )
    if not result:
        raise ConfigurationError("messages is empty: give at least one message")
    return result
