"""The OpenAI chat-completions wire protocol, sans-I/O.

Served by OpenAI, Azure OpenAI (both routes), Azure catalog models, Ollama's ``/v1``, llama.cpp,
vLLM, LM Studio and many more; their differences are `ModelProfile` fields, not new classes: the
field that carries ``max_tokens``, whether to ask for usage in a stream, a system message folded
for families without a system role, and the compatibility repairs (usage counted offline,
``<tool_call>`` text turned into tool calls) that `_compat_quirks` implements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .._codec import NO_CONTEXT, Reply, RequestContext
from .._events import ContentFilterEvent, FinishEvent, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, UsageEvent
from .._exceptions import APIStatusError, ConfigurationError, InBandStreamError, StreamDecodeError
from .._messages import ImagePart, Message, TextPart, ToolCall
from .._response import ChatResponse, Usage
from .._settings import Tool
from .._sse import DEFAULT_MAX_EVENT, DEFAULT_MAX_LINE, SSEDecoder
from .._streaming import ParserBase, StreamParser
from ._compat_quirks import fold_system_messages, repair_response, repairing_parser
from ._error_bodies import error_from_body, error_in_ok_body, error_info, typed_error

__all__ = ["OpenAIChatCodec", "OpenAIStreamParser", "parse_usage"]

_REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


_PASSTHROUGH = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user", "parallel_tool_calls")


def encode_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, list):
        out["content"] = [_encode_part(part) for part in content]
    elif content is not None or message.role != "assistant":
        out["content"] = content if content is not None else ""
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False),
                },
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _encode_part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image_url: dict[str, Any] = {"url": part.as_url()}
    if part.detail is not None:
        image_url["detail"] = part.detail
    return {"type": "image_url", "image_url": image_url}


def encode_tool(tool: Tool | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(tool, Tool):
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.strict is not None:
            function["strict"] = tool.strict
        return {"type": "function", "function": function}
    if "type" in tool:
        return dict(tool)
    if "name" in tool:
        return {"type": "function", "function": dict(tool)}
    raise ConfigurationError(f"a tool needs a name: {tool!r}; use mm.Tool(name=..., parameters={{...}})")


def encode_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def encode_response_format(fmt: Any) -> Any:
    if fmt == "json":
        return {"type": "json_object"}
    if fmt == "text":
        return {"type": "text"}
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return {"type": "json_schema", "json_schema": {"name": fmt.__name__, "schema": fmt.model_json_schema()}}
    if isinstance(fmt, Mapping):
        return dict(fmt)
    raise ConfigurationError(
        f"response_format {fmt!r} is not supported: use 'json', a JSON-schema dict or a pydantic model class"
    )


def parse_usage(raw: Any) -> Usage | None:
    # `raw is None` / `type(...) is dict` first: this runs on every stream chunk, and an ABC
    # isinstance check costs more than the rest of the common path.
    if raw is None or (type(raw) is not dict and not isinstance(raw, Mapping)):
        return None
    prompt = raw.get("prompt_tokens", raw.get("input_tokens"))
    completion = raw.get("completion_tokens", raw.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details")
    completion_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, Mapping) else None
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, Mapping) else None
    return Usage(
        input_tokens=int(prompt or 0),
        output_tokens=int(completion or 0),
        cached_tokens=cached if isinstance(cached, int) else None,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else None,
    )


def _reasoning_of(source: Mapping[str, Any]) -> str | None:
    for key in _REASONING_KEYS:
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _tool_call(call: Mapping[str, Any]) -> ToolCall:
    function = call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    return ToolCall.from_raw(call.get("id"), str(function.get("name", "")), function.get("arguments"))


def _choice0(choices: Any) -> Mapping[str, Any] | None:
    # The `type(...) is list/dict` fast paths skip ABC checks for what json.loads produces.
    if (type(choices) is not list and not isinstance(choices, Sequence)) or not choices:
        return None
    for choice in choices:
        if (type(choice) is dict or isinstance(choice, Mapping)) and choice.get("index", 0) == 0:
            return choice
    return None


class OpenAIChatCodec:
    """Request building and response parsing for ``POST {base}/chat/completions``."""

    chat_path = "chat/completions"

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        settings, profile = call.settings, call.profile
        messages = call.messages if profile.system_role else fold_system_messages(call.messages)
        body: dict[str, Any] = {"model": call.model, "messages": [encode_message(m) for m in messages]}
        for key in _PASSTHROUGH:
            if key in settings:
                body[key] = settings[key]  # type: ignore[literal-required]
        if "max_tokens" in settings:
            body[profile.max_tokens_field] = settings["max_tokens"]
        if "stop" in settings:
            stop = settings["stop"]
            body["stop"] = stop if isinstance(stop, str) else list(stop)
        if settings.get("tools"):
            body["tools"] = [encode_tool(t) for t in settings["tools"]]
        if "tool_choice" in settings:
            body["tool_choice"] = encode_tool_choice(settings["tool_choice"])
        if "response_format" in settings:
            body["response_format"] = encode_response_format(settings["response_format"])
        if call.stream:
            body["stream"] = True
            if profile.stream_usage:
                body["stream_options"] = {"include_usage": True}
        extra = settings.get("extra_body")
        if extra:
            body.update(extra)
        return body

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        if not isinstance(data, Mapping) or data.get("error") or not isinstance(data.get("choices"), list):
            # LM Studio, Azure gateways and some proxies answer HTTP 200 with an error body.
            raise error_in_ok_body(data, reply, fallback="the server answered without any choices")
        choice = _choice0(data["choices"]) or {}
        raw_message = choice.get("message") or {}
        tool_calls = [_tool_call(call) for call in raw_message.get("tool_calls") or [] if isinstance(call, Mapping)]
        content = raw_message.get("content")
        finish = choice.get("finish_reason")
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        filter_results = choice.get("content_filter_results")
        prompt_filters = data.get("prompt_filter_results")
        response = ChatResponse(
            message=Message(
                role="assistant",
                content=content if isinstance(content, str) else (None if tool_calls else ""),
                tool_calls=tool_calls,
            ),
            finish_reason=finish,
            usage=parse_usage(data.get("usage")),
            model=data.get("model") or None,
            provider="",
            reasoning=_reasoning_of(raw_message),
            content_filter_results=dict(filter_results) if isinstance(filter_results, Mapping) else None,
            prompt_filter_results=list(prompt_filters) if isinstance(prompt_filters, list) else None,
            raw=dict(data),
        )
        return repair_response(response, reply.call) if reply.call is not None else response

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return error_from_body(body, reply)

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        parser = OpenAIStreamParser()
        return repairing_parser(parser, call) if call is not None else parser


class OpenAIStreamParser(ParserBase):
    """SSE bytes → typed events for chat-completion chunks.

    Handles: Azure's leading chunk with empty ``choices`` and prompt-filter results; usage on a
    final ``choices: []`` chunk or on the finish chunk; tool-call deltas with or without
    ``index``/``id``; reasoning fields; error objects inside the stream.
    """

    context = NO_CONTEXT

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        self._sse = SSEDecoder(max_line=max_line, max_event=max_event)
        self._done = False
        self._model: str | None = None
        self._tool_slots: dict[str, int] = {}
        self._next_slot = 0

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.feed(chunk):
            self._on_event(sse.data, sse.event, events)
        return events

    def flush(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.flush():
            self._on_event(sse.data, sse.event, events)
        return events

    def _on_event(self, data: str, event_type: str | None, out: list[StreamEvent]) -> None:
        if self._done:
            return
        if data == "[DONE]":
            self._done = True
            return
        # Raised outside the except block: the decode error's context would carry the payload.
        try:
            payload, valid = json.loads(data), True
        except json.JSONDecodeError:
            payload, valid = None, False
        if not valid:
            raise StreamDecodeError(
                "a stream event is not valid JSON",
                offset=self._sse.consumed,
                length=len(data),
                **self.context.fields(0),
            )
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise StreamDecodeError(
                "a stream event is not a JSON object",
                offset=self._sse.consumed,
                length=len(data),
                **self.context.fields(0),
            )
        self._on_payload(payload, event_type, out)

    def feed_object(self, item: Mapping[str, Any] | str) -> list[StreamEvent]:
        """One chunk already decoded (an in-process model's dicts), or ``"[DONE]"``: no bytes,
        no JSON round trip."""
        events: list[StreamEvent] = []
        if self._done:
            return events
        if isinstance(item, str):
            self._done = item == "[DONE]"
            return events
        self._on_payload(item, None, events)
        return events

    def _on_payload(self, payload: Mapping[str, Any], event_type: str | None, out: list[StreamEvent]) -> None:
        if event_type == "error" or payload.get("error") or payload.get("type") in ("error", "response.failed"):
            raise self._in_band_error(payload)
        if self._model is None and payload.get("model"):
            self._model = str(payload["model"])
        prompt_filters = payload.get("prompt_filter_results")
        if isinstance(prompt_filters, list):
            out.extend(
                ContentFilterEvent(results=dict(r), source="prompt") for r in prompt_filters if isinstance(r, Mapping)
            )
        choice = _choice0(payload.get("choices"))
        if choice is not None:
            self._on_choice(choice, out)
        usage = parse_usage(payload.get("usage"))
        if usage is not None:
            out.append(UsageEvent(usage))

    def _on_choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict or isinstance(delta, Mapping):
            reasoning = _reasoning_of(delta)
            if reasoning:
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(TextDelta(content))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for position, call in enumerate(calls):
                    if isinstance(call, Mapping):
                        out.append(self._tool_delta(call, position))
        filters = choice.get("content_filter_results")
        if filters and (type(filters) is dict or isinstance(filters, Mapping)):
            out.append(ContentFilterEvent(results=dict(filters)))
        finish = choice.get("finish_reason")
        if finish:
            out.append(FinishEvent(str(finish)))

    def _tool_delta(self, call: Mapping[str, Any], position: int) -> ToolCallDelta:
        raw_function = call.get("function")
        function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
        call_id = call.get("id")
        index = call.get("index")
        if isinstance(index, int):
            key = f"i{index}"
        elif call_id:
            key = f"d{call_id}"  # Whole calls sent without index (Azure catalog, Ollama /v1): one per id.
        else:
            key = f"p{position}"
        slot = self._tool_slots.get(key)
        if slot is None:
            slot = self._tool_slots[key] = self._next_slot
            self._next_slot += 1
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return ToolCallDelta(
            index=slot,
            id=call_id if isinstance(call_id, str) else None,
            name=function.get("name") or None,
            arguments=arguments if isinstance(arguments, str) else "",
        )

    def _in_band_error(self, payload: Mapping[str, Any]) -> InBandStreamError:
        info = error_info(payload, fallback="the server reported an error inside the stream")
        status = _status_for_in_band(info.type, info.code)
        mapped = typed_error(status, info, {}, self.context)
        mapped.phase = "pre_commit_stream"  # still inside the builder: nobody has seen it yet
        message = f"error inside the stream: {self.context.redact(info.message)}"
        where = self.context.fields(0)
        return InBandStreamError(message, mapped=mapped, code=info.code, error_type=info.type, status=None, **where)


def _status_for_in_band(error_type: str | None, code: str | None) -> int:
    """The HTTP status an in-band error would have had, so it retries like one."""
    text = f"{error_type or ''} {code or ''}".lower()
    if "rate_limit" in text or "429" in text:
        return 429
    if "invalid_request" in text or "context" in text or "content_filter" in text:
        return 400
    if "auth" in text:
        return 401
    if "not_found" in text:
        return 404
    return 500
