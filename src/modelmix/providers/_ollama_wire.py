"""Ollama's native chat protocol (``POST /api/chat``), sans-I/O.

How it differs from OpenAI's chat completions:

- Streaming is NDJSON (one JSON object per line) and *on by default*: a non-streamed call must
  send ``"stream": false``. The last object has ``"done": true``, the ``done_reason`` and the eval
  counts (``prompt_eval_count`` / ``eval_count``) that are the usage.
- Sampling settings go in ``options`` (``num_predict`` is max_tokens).
- Tool-call arguments are JSON *objects*, not strings, both ways; tool results carry
  ``tool_name`` rather than a call id.
- Images travel as a list of base64 strings on the message (``images``).
- Errors are ``{"error": "<text>"}`` — with an HTTP error status before the stream starts, or as
  an NDJSON line inside a stream that began with HTTP 200.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .._codec import NO_CONTEXT, ErrorContext, Reply, RequestContext
from .._events import FinishEvent, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, UsageEvent
from .._exceptions import APIStatusError, ConfigurationError, InBandStreamError, NotFoundError
from .._messages import ImagePart, Message, TextPart, ToolCall
from .._response import ChatResponse, Usage
from .._sse import DEFAULT_MAX_LINE, NDJSONDecoder
from .._streaming import ParserBase
from ._compat_quirks import fold_system_messages
from ._error_bodies import error_from_body, error_info, typed_error
from ._openai_wire import encode_tool
from ._reasoning import reasoning_fields
from ._wire_fields import MalformedAnswer, decoded_body, decoded_event, event_object, int_field, list_field
from ._wire_fields import mapping_field as _object_field
from ._wire_fields import text_field as _text

__all__ = ["OllamaCodec", "OllamaStreamParser", "ollama_usage"]

# Settings that Ollama takes inside "options", under its own names.
_OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_tokens": "num_predict",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_MODEL_IN_MESSAGE = re.compile(r"""model ['"]?([^'"]+?)['"]? not found""")


def ollama_usage(data: Mapping[str, Any]) -> Usage | None:
    """Usage from the eval counts of a final (``done: true``) object, if it has any.

    Raises `MalformedAnswer` when a count is not a number."""
    prompt = int_field(data, "prompt_eval_count", "prompt_eval_count")
    output = int_field(data, "eval_count", "eval_count")
    if prompt is None and output is None:
        return None
    return Usage(input_tokens=prompt or 0, output_tokens=output or 0)


def _encode_message(message: Message, id_to_name: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role if message.role != "developer" else "system"}
    content = message.content
    images: list[str] = []
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart):
                images.append(_image_base64(part))
        out["content"] = "".join(texts)
    else:
        out["content"] = content or ""
    if images:
        out["images"] = images
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            if call.id:
                id_to_name[call.id] = call.name
            calls.append({"function": {"name": call.name, "arguments": call.arguments}})
        out["tool_calls"] = calls
    if message.role == "tool":
        # Ollama matches a result to its call by the tool's name, not by an id.
        name = message.name or (id_to_name.get(message.tool_call_id) if message.tool_call_id else None)
        if name:
            out["tool_name"] = name
    return out


def _image_base64(part: ImagePart) -> str:
    if part.data is not None:
        return base64.b64encode(part.data).decode("ascii")
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        return url.split(";base64,", 1)[1]
    raise ConfigurationError("Ollama takes images as bytes, not URLs: pass mm.image(data=...) or a base64 data: URL")


def _encode_format(fmt: Any) -> Any:
    if fmt == "json":
        return "json"
    if fmt == "text":
        return None
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return fmt.model_json_schema()
    if isinstance(fmt, Mapping):
        # Accept OpenAI's response_format shapes as well as a bare JSON schema.
        if fmt.get("type") == "json_object":
            return "json"
        if fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
            return dict(fmt["json_schema"].get("schema") or {})
        return dict(fmt)
    raise ConfigurationError(f"response_format {fmt!r} is not supported by Ollama: use 'json' or a JSON schema")


def _tool_calls(message: Mapping[str, Any], where: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for position, call in enumerate(list_field(message, "tool_calls", f"{where}.tool_calls") or ()):
        at = f"{where}.tool_calls[{position}]"
        if not isinstance(call, Mapping):
            raise MalformedAnswer(at, "an object", call)
        function = _object_field(call, "function", f"{at}.function") or {}
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, (str, Mapping)):
            raise MalformedAnswer(f"{at}.function.arguments", "an object", arguments)
        name = _text(function, "name", f"{at}.function.name") or ""
        calls.append(ToolCall.from_raw(_text(call, "id", f"{at}.id"), name, arguments))
    return calls


def _message_text(message: Mapping[str, Any], key: str, where: str) -> str | None:
    """A text field of a message (``content``, ``thinking``); None when absent or empty."""
    return _text(message, key, f"{where}.{key}") or None


def _response_from_body(data: Mapping[str, Any], raw_message: Mapping[str, Any]) -> ChatResponse:
    """The answer a complete ``/api/chat`` body holds; `MalformedAnswer` or a pydantic
    `ValidationError` when it is not a valid one."""
    tool_calls = _tool_calls(raw_message, "message")
    content = _text(raw_message, "content", "message.content")
    finish = _text(data, "done_reason", "done_reason") or None
    if tool_calls and finish == "stop":
        finish = "tool_calls"
    thinking = _message_text(raw_message, "thinking", "message")
    return ChatResponse(
        message=Message(
            role="assistant",
            content=content if content is not None and (content or not tool_calls) else None,
            tool_calls=tool_calls,
        ),
        finish_reason=finish,
        usage=ollama_usage(data),
        model=_text(data, "model", "model") or None,
        provider="",
        reasoning=thinking,
        reasoning_text=thinking,
        raw=dict(data),
    )


class OllamaCodec:
    """Request building and response parsing for ``POST {host}/api/chat``."""

    chat_path = "api/chat"

    def __init__(self, model: str = "", *, keep_alive: str | float | None = None) -> None:
        self.model = model
        self.keep_alive = keep_alive

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        settings = call.settings
        messages = call.messages if call.profile.system_role else fold_system_messages(call.messages)
        id_to_name: dict[str, str] = {}
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [_encode_message(m, id_to_name) for m in messages],
            "stream": call.stream,
        }
        options: dict[str, Any] = {}
        for key, option in _OPTION_NAMES.items():
            if key in settings:
                options[option] = settings[key]  # type: ignore[literal-required]
        if "stop" in settings:
            stop = settings["stop"]
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        if options:
            body["options"] = options
        # /api/chat has no tool_choice: "auto" is what it does anyway and "none" is honoured by
        # not offering the tools; the profile refuses the forms it cannot honour before this.
        if settings.get("tools") and settings.get("tool_choice") != "none":
            body["tools"] = [encode_tool(t) for t in settings["tools"]]
        if "response_format" in settings:
            fmt = _encode_format(settings["response_format"])
            if fmt is not None:
                body["format"] = fmt
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        if "reasoning" in settings:
            body.update(reasoning_fields(settings["reasoning"], call.profile.reasoning))
        extra = settings.get("extra_body")
        if extra:
            # Ollama-specific options (num_ctx, top_k, ...) merge into "options"; other keys go top level.
            extra = dict(extra)
            extra_options = extra.pop("options", None)
            if isinstance(extra_options, Mapping):
                body["options"] = {**body.get("options", {}), **extra_options}
            body.update(extra)
        return body

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        if not isinstance(data, Mapping) or data.get("error") or not isinstance(data.get("message"), Mapping):
            info = error_info(data, fallback="Ollama answered without a message")
            status = reply.status if reply.status >= 400 else 500
            raise self._typed(status, info.message, reply.headers, reply.context)
        return decoded_body(lambda: _response_from_body(data, data["message"]), reply)

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        error = error_from_body(body, reply)
        if isinstance(error, NotFoundError) or (reply.status == 404 and "not found" in error.message):
            return self._typed(404, error.message, reply.headers, reply.context)
        return error

    def _typed(
        self, status: int, message: str, headers: Mapping[str, str], context: ErrorContext = NO_CONTEXT
    ) -> APIStatusError:
        found = _MODEL_IN_MESSAGE.search(message)
        if found or (status == 404 and "not found" in message.lower()):
            name = found.group(1) if found else self.model
            return NotFoundError(
                f"{context.redact(message)}. The model is not on this Ollama server: run `ollama pull {name}` "
                "(or check the name with `ollama list`)",
                status=404,
                phase="status",
                **context.fields(404),
            )
        return typed_error(status, error_info(message, fallback=message), headers, context)

    def stream_parser(self, call: RequestContext | None = None) -> OllamaStreamParser:
        return OllamaStreamParser(self)


class OllamaStreamParser(ParserBase):
    """NDJSON bytes → typed events. Every object carries a message fragment; tool calls arrive
    whole (one object per call list); the ``done: true`` object ends the stream."""

    context = NO_CONTEXT

    def __init__(self, codec: OllamaCodec | None = None, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._codec = codec or OllamaCodec()
        self._lines = NDJSONDecoder(max_line=max_line)
        self._done = False
        self._model: str | None = None
        self._next_tool = 0
        self._pending_error: InBandStreamError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._lines_to_events(self._lines.feed(chunk))

    def flush(self) -> list[StreamEvent]:
        return self._lines_to_events(self._lines.flush())

    def _lines_to_events(self, lines: list[str]) -> list[StreamEvent]:
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        events: list[StreamEvent] = []
        for line in lines:
            try:
                self._on_line(line, events)
            except InBandStreamError as exc:
                if not events:
                    raise
                # Deliver the content that arrived before the error line first (it may already
                # have been shown to the caller elsewhere); the error follows on the next call.
                self._pending_error = exc
                break
        return events

    def _on_line(self, line: str, out: list[StreamEvent]) -> None:
        if self._done:
            return
        data = event_object(line, "an NDJSON line", self.context, self._lines.consumed)
        if data.get("error"):
            # Ollama reports failures after the 200 status line as an {"error": ...} line.
            info = error_info(data, fallback="Ollama reported an error inside the stream")
            mapped = self._codec._typed(500, info.message, {}, self.context)
            mapped.phase = "pre_commit_stream"  # still inside the builder: nobody has seen it yet
            text = f"error inside the stream: {self.context.redact(info.message)}"
            raise InBandStreamError(text, mapped=mapped, status=None, **self.context.fields(0))
        decoded_event(self.context, self._lines.consumed, len(line), self._on_object, data, out)

    def _on_object(self, data: Mapping[str, Any], out: list[StreamEvent]) -> None:
        if self._model is None:
            self._model = _text(data, "model", "model") or None
        message = _object_field(data, "message", "message")
        if message is not None:
            thinking = _message_text(message, "thinking", "message")
            if thinking:
                out.append(ReasoningDelta(thinking))
            content = _message_text(message, "content", "message")
            if content:
                out.append(TextDelta(content))
            for call in _tool_calls(message, "message"):
                out.append(
                    ToolCallDelta(index=self._next_tool, id=call.id, name=call.name, arguments=call.raw_arguments)
                )
                self._next_tool += 1
        if data.get("done") is True:
            self._done = True
            reason = _text(data, "done_reason", "done_reason")
            out.append(FinishEvent(reason or "stop"))
            usage = ollama_usage(data)
            if usage is not None:
                out.append(UsageEvent(usage))
