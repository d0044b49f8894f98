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
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .._codec import NO_CONTEXT, Reply, RequestContext
from .._events import (
    ContentFilterEvent,
    FinishEvent,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from .._exceptions import APIStatusError, ConfigurationError, InBandStreamError
from .._messages import ImagePart, Message, TextPart, ToolCall
from .._profile import JSONSchemaVia
from .._response import ChatResponse, Usage
from .._settings import Tool
from .._sse import DEFAULT_MAX_EVENT, DEFAULT_MAX_LINE, SSEDecoder
from .._streaming import ParserBase, StreamParser
from ._compat_quirks import fold_system_messages, repair_response, repairing_parser
from ._error_bodies import error_from_body, error_in_ok_body, error_info, typed_error
from ._reasoning import reasoning_fields
from ._reasoning_state import ChatStateCollector, add_chat_echo, chat_state, with_state
from ._wire_fields import (
    MalformedAnswer,
    decoded_body,
    decoded_event,
    event_object,
    int_field,
    list_field,
    loads_event,
    malformed_event_error,
    mapping_field,
    text_field,
)

if TYPE_CHECKING:
    from .._events import StreamEvent

__all__ = ["REASONING_KEYS", "OpenAIChatCodec", "OpenAIStreamParser", "SSEJSONParser", "parse_usage"]

REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")
"""The fields servers put reasoning text in (DeepSeek and vLLM, OpenRouter and Groq, Ollama)."""


_PASSTHROUGH = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user", "parallel_tool_calls")


def encode_message(message: Message, *, content_parts: bool = True, origin: str = "") -> dict[str, Any]:
    """One message on the wire. With ``content_parts=False`` (the profile field: a server whose
    chat template reads content as a string) a list of text parts becomes one string, and an
    assistant turn that only calls tools carries ``""``, since such templates fail on a missing
    content; a list holding an image stays a list, the only form an image has. A turn whose
    reasoning state came from `origin` carries it back."""
    out: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, list) and not content_parts and all(isinstance(p, TextPart) for p in content):
        out["content"] = _joined_text(content)
    elif isinstance(content, list):
        out["content"] = [_encode_part(part) for part in content]
    elif content is not None or message.role != "assistant" or not content_parts:
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
    if message.reasoning_state is not None:
        add_chat_echo(out, message, origin)
    return out


def _joined_text(parts: Sequence[TextPart | ImagePart]) -> str:
    # Separate parts read as separate lines (vLLM joins them the same way before templating),
    # unless a part already ends or starts with whitespace (a folded system preamble ends in one).
    joined = ""
    for part in parts:
        if isinstance(part, TextPart):
            glue = "" if not joined or joined[-1].isspace() or part.text[:1].isspace() else "\n"
            joined += glue + part.text
    return joined


def _encode_part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image_url: dict[str, Any] = {"url": part.as_url()}
    if part.detail is not None:
        image_url["detail"] = part.detail
    return {"type": "image_url", "image_url": image_url}


def encode_tool(tool: Any) -> dict[str, Any]:
    """One tool in the ``tools`` array. Settings arrive with functions and model classes already
    described (see `merge_settings`); anything else is described here, for codecs called directly."""
    if not isinstance(tool, (Tool, Mapping)):
        from .._tools import as_tool

        tool = as_tool(tool)
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
    """``auto``/``none``/``required`` as they are; one tool (its name, or the tool itself) as the
    ``{"type": "function", ...}`` object; a dict already in that form as it is."""
    if not isinstance(choice, (str, Mapping)):
        from .._tools import tool_choice_name

        choice = tool_choice_name(choice)
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def encode_response_format(fmt: Any, via: JSONSchemaVia = "response_format") -> Any:
    """``response_format`` for the body. A schema goes as OpenAI's ``json_schema`` object, or with
    ``via="json_object_schema"`` (llama.cpp) as ``{"type": "json_object", "schema": ...}``."""
    if fmt == "json":
        return {"type": "json_object"}
    if fmt == "text":
        return {"type": "text"}
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        if via == "json_object_schema":
            return {"type": "json_object", "schema": fmt.model_json_schema()}
        return {"type": "json_schema", "json_schema": {"name": fmt.__name__, "schema": fmt.model_json_schema()}}
    if isinstance(fmt, Mapping):
        if via == "json_object_schema" and fmt.get("type") == "json_schema":
            return {"type": "json_object", "schema": _schema_of(fmt)}
        return dict(fmt)
    raise ConfigurationError(
        f"response_format {fmt!r} is not supported: use 'json', a JSON-schema dict or a pydantic model class"
    )


def _schema_of(fmt: Mapping[str, Any]) -> Any:
    """The schema inside an OpenAI ``{"type": "json_schema", "json_schema": {"schema": ...}}``."""
    wrapper = fmt.get("json_schema")
    if not isinstance(wrapper, Mapping) or not isinstance(wrapper.get("schema"), Mapping):
        raise ConfigurationError(
            f"response_format {dict(fmt)!r} has no schema: use "
            "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}} or a pydantic model class"
        )
    return dict(wrapper["schema"])


def parse_usage(raw: Any) -> Usage | None:
    """Usage from an OpenAI ``usage`` object (or the Responses API's names for the same counts).

    Raises `MalformedAnswer` when the object or a count has the wrong type."""
    # `raw is None` / `type(...) is dict` first: this runs on every stream chunk, and an ABC
    # isinstance check costs more than the rest of the common path.
    if raw is None:
        return None
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise MalformedAnswer("usage", "an object", raw)
    prompt_key = "prompt_tokens" if "prompt_tokens" in raw else "input_tokens"
    completion_key = "completion_tokens" if "completion_tokens" in raw else "output_tokens"
    prompt = int_field(raw, prompt_key, f"usage.{prompt_key}")
    completion = int_field(raw, completion_key, f"usage.{completion_key}")
    if prompt is None and completion is None:
        return None
    prompt_details = raw.get("prompt_tokens_details") or raw.get("input_tokens_details")
    completion_details = raw.get("completion_tokens_details") or raw.get("output_tokens_details")
    # The detail counts are optional extras: one of the wrong type is left out, not an error.
    cached = written = None
    if isinstance(prompt_details, Mapping):
        cached = prompt_details.get("cached_tokens")
        # Part of the prompt written to the provider's cache (OpenRouter's name; billed apart).
        written = prompt_details.get("cache_write_tokens")
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, Mapping) else None
    return Usage(
        input_tokens=prompt or 0,
        output_tokens=completion or 0,
        cached_tokens=cached if type(cached) is int else None,
        reasoning_tokens=reasoning if type(reasoning) is int else None,
        cache_write_tokens=written if type(written) is int else None,
    )


def _reasoning_of(source: Mapping[str, Any]) -> str | None:
    for key in REASONING_KEYS:
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _tool_arguments(function: Mapping[str, Any], where: str) -> str | Mapping[str, Any] | None:
    arguments = function.get("arguments")
    if arguments is None or type(arguments) is str or isinstance(arguments, Mapping):
        return arguments
    raise MalformedAnswer(where, "a JSON string or an object", arguments)


def _content_text(message: Mapping[str, Any], where: str) -> str | None:
    """The message's text; None when absent. Content parts (a list) carry no plain text here."""
    content = message.get("content")
    if content is None or type(content) is str:
        return content
    if type(content) is list:
        return None
    raise MalformedAnswer(where, "a string", content)


def _tool_call(call: Any, where: str) -> ToolCall:
    if type(call) is not dict and not isinstance(call, Mapping):
        raise MalformedAnswer(where, "an object", call)
    function = mapping_field(call, "function", f"{where}.function") or {}
    return ToolCall.from_raw(
        text_field(call, "id", f"{where}.id"),
        text_field(function, "name", f"{where}.function.name") or "",
        _tool_arguments(function, f"{where}.function.arguments"),
    )


def _choice0(choices: list[Any] | None) -> Mapping[str, Any] | None:
    """The choice with index 0 (the one modelmix returns), or None when there is none."""
    if not choices:
        return None
    for position, choice in enumerate(choices):
        # The `type(...) is dict` fast path skips an ABC check for what json.loads produces.
        if type(choice) is not dict and not isinstance(choice, Mapping):
            raise MalformedAnswer(f"choices[{position}]", "an object", choice)
        if choice.get("index", 0) == 0:
            return choice
    return None


def _filter_list(source: Mapping[str, Any], key: str) -> list[dict[str, Any]] | None:
    results = list_field(source, key, key)
    if results is None:
        return None
    for position, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise MalformedAnswer(f"{key}[{position}]", "an object", result)
    return [dict(result) for result in results]


def _response_from_body(data: Mapping[str, Any], choices: list[Any], call: RequestContext | None) -> ChatResponse:
    """The answer a chat-completion body holds; `MalformedAnswer` or a pydantic `ValidationError`
    when it is not a valid one."""
    if not choices:
        # A 200 without any choice is no answer at all, not an empty one.
        raise MalformedAnswer("choices", "a list with at least one choice", choices)
    choice = _choice0(choices)
    if choice is None:
        raise MalformedAnswer("choices", "a list holding the choice with index 0", choices)
    raw_message = mapping_field(choice, "message", "choices[0].message") or {}
    raw_calls = list_field(raw_message, "tool_calls", "choices[0].message.tool_calls") or []
    tool_calls = [_tool_call(call, f"choices[0].message.tool_calls[{i}]") for i, call in enumerate(raw_calls)]
    content = _content_text(raw_message, "choices[0].message.content")
    finish = text_field(choice, "finish_reason", "choices[0].finish_reason")
    if tool_calls and finish == "stop":
        finish = "tool_calls"
    filter_results = mapping_field(choice, "content_filter_results", "choices[0].content_filter_results")
    reasoning = _reasoning_of(raw_message)  # chat completions carry raw reasoning text, never a summary
    echo = call.profile.reasoning_echo if call is not None else None
    return ChatResponse(
        message=Message(
            role="assistant",
            content=content if content is not None else (None if tool_calls else ""),
            tool_calls=tool_calls,
            reasoning_state=chat_state(call.origin, echo, raw_message, raw_calls) if call and echo else None,
        ),
        finish_reason=finish,
        usage=parse_usage(data.get("usage")),
        model=text_field(data, "model", "model") or None,
        provider="",
        reasoning=reasoning,
        reasoning_text=reasoning,
        refusal=text_field(raw_message, "refusal", "choices[0].message.refusal") or None,
        content_filter_results=dict(filter_results) if filter_results is not None else None,
        prompt_filter_results=_filter_list(data, "prompt_filter_results"),
        raw=dict(data),
    )


class OpenAIChatCodec:
    """Request building and response parsing for ``POST {base}/chat/completions``."""

    chat_path = "chat/completions"

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        settings, profile = call.settings, call.profile
        messages = call.messages if profile.system_role else fold_system_messages(call.messages)
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [encode_message(m, content_parts=profile.content_parts, origin=call.origin) for m in messages],
        }
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
            fmt = encode_response_format(settings["response_format"], profile.json_schema_via)
            if profile.json_schema_via == "json_schema" and fmt.get("type") == "json_schema":
                body["json_schema"] = _schema_of(fmt)  # llama.cpp's own field, no response_format
            else:
                body["response_format"] = fmt
        if call.stream:
            body["stream"] = True
            if profile.stream_usage:
                body["stream_options"] = {"include_usage": True}
        if "reasoning" in settings:
            body.update(reasoning_fields(settings["reasoning"], profile.reasoning))
        extra = settings.get("extra_body")
        if extra:
            body.update(extra)
        return body

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        if not isinstance(data, Mapping) or data.get("error") or not isinstance(data.get("choices"), list):
            # LM Studio, Azure gateways and some proxies answer HTTP 200 with an error body.
            raise error_in_ok_body(data, reply, fallback="the server answered without any choices")
        response = decoded_body(lambda: _response_from_body(data, data["choices"], reply.call), reply)
        return repair_response(response, reply.call) if reply.call is not None else response

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return error_from_body(body, reply)

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        parser = OpenAIStreamParser()
        return repairing_parser(collecting(parser, call), call) if call is not None else parser


def collecting(parser: OpenAIStreamParser, call: RequestContext) -> OpenAIStreamParser:
    """`parser`, gathering the reasoning state the call's profile says the server wants back."""
    if call.origin and call.profile.reasoning_echo:
        parser.collector = ChatStateCollector(call.origin, call.profile.reasoning_echo)
    return parser


class SSEJSONParser(ParserBase):
    """The SSE side of a JSON-events stream parser: framing, ``[DONE]``, decoding each event and
    turning a malformed one into a typed error. Subclasses handle the decoded events
    (`_on_payload`)."""

    context = NO_CONTEXT
    done_sentinel = True
    """``data: [DONE]`` ends the stream (Chat Completions); False: it is ignored, the stream ends
    at an event of its own (the Responses API)."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        self._sse = SSEDecoder(max_line=max_line, max_event=max_event)
        self._done = False
        self._model: str | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        data = self._sse.whole_data(chunk)
        if data is not None:
            if data:
                self._on_event(data, None, events)
            return events
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
            self._done = self.done_sentinel
            return
        # The per-event path, inlined (this runs for every chunk of every stream); the helpers in
        # `_wire_fields` build the errors, and the offset is only read when one is raised.
        try:
            payload = loads_event(data)
        except (ValueError, RecursionError):
            payload = None
        if type(payload) is not dict and not isinstance(payload, Mapping):
            event_object(data, "a stream event", self.context, self._sse.consumed)  # raises the typed error
        try:
            self._on_payload(payload, event_type, out)
            return
        except (MalformedAnswer, ValidationError) as problem:
            error = malformed_event_error(problem, self.context, offset=self._sse.consumed, length=len(data))
        # Raised outside the except block: a validation error as its context would repeat the event.
        raise error

    def _on_payload(self, payload: Mapping[str, Any], event_type: str | None, out: list[StreamEvent]) -> None:
        raise NotImplementedError


class OpenAIStreamParser(SSEJSONParser):
    """SSE bytes → typed events for chat-completion chunks.

    Handles: Azure's leading chunk with empty ``choices`` and prompt-filter results; usage on a
    final ``choices: []`` chunk or on the finish chunk; tool-call deltas with or without
    ``index``/``id``; reasoning fields; error objects inside the stream.
    """

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT) -> None:
        super().__init__(max_line=max_line, max_event=max_event)
        self._tool_slots: dict[str, int] = {}
        self._slot_ids: dict[int, str] = {}  # the id each call was first sent with
        self._named_slots: set[int] = set()  # the calls whose name has arrived
        self._next_slot = 0
        self.collector: ChatStateCollector | None = None

    def completed(self, response: ChatResponse) -> ChatResponse:
        if self.collector is None:
            return response
        return with_state(response, self.collector.state(has_calls=bool(response.tool_calls)))

    def feed_object(self, item: Mapping[str, Any] | str) -> list[StreamEvent]:
        """One chunk already decoded (an in-process model's dicts), or ``"[DONE]"``: no bytes,
        no JSON round trip."""
        events: list[StreamEvent] = []
        if self._done:
            return events
        if isinstance(item, str):
            self._done = item == "[DONE]"
            return events
        decoded_event(self.context, self._sse.consumed, 0, self._on_payload, item, None, events)
        return events

    def _on_payload(self, payload: Mapping[str, Any], event_type: str | None, out: list[StreamEvent]) -> None:
        if event_type == "error" or payload.get("error") or payload.get("type") in ("error", "response.failed"):
            raise self._in_band_error(payload)
        if self._model is None:  # the first chunks (Azure's prompt-filter chunk has neither)
            self._model = text_field(payload, "model", "model") or None
            self._note_response_id(payload.get("id"))
        prompt_filters = payload.get("prompt_filter_results")
        if isinstance(prompt_filters, list):
            out.extend(
                ContentFilterEvent(results=dict(r), source="prompt") for r in prompt_filters if isinstance(r, Mapping)
            )
        choices = payload.get("choices")
        # This runs for every chunk: the common, well-typed case costs a type check, and the
        # typed readers (which name the field in their error) only run for anything else.
        if type(choices) is list and len(choices) == 1 and type(choices[0]) is dict and choices[0].get("index") == 0:
            self._on_choice(choices[0], out)  # one choice, the usual case
        else:
            choice = _choice0(choices if type(choices) is list else list_field(payload, "choices", "choices"))
            if choice is not None:
                self._on_choice(choice, out)
        usage = payload.get("usage")
        if usage is not None:
            parsed = parse_usage(usage)
            if parsed is not None:
                out.append(UsageEvent(parsed))

    def _on_choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict and len(delta) == 1 and type(delta.get("content")) is str:
            # Nearly every chunk: a delta holding only a piece of text.
            if delta["content"]:
                out.append(TextDelta(delta["content"]))
        elif delta is not None:
            self._on_delta(delta if type(delta) is dict else mapping_field(choice, "delta", "choices[0].delta"), out)
        if len(choice) > 3 or "content_filter_results" in choice:
            filters = choice.get("content_filter_results")
            if filters:
                filters = mapping_field(choice, "content_filter_results", "choices[0].content_filter_results")
                out.append(ContentFilterEvent(results=dict(filters or {})))
        finish = choice.get("finish_reason")
        if finish is not None:
            if type(finish) is not str:
                finish = text_field(choice, "finish_reason", "choices[0].finish_reason")
            if finish:
                out.append(FinishEvent(finish))

    def _on_delta(self, delta: Mapping[str, Any] | None, out: list[StreamEvent]) -> None:
        if delta:
            if self.collector is not None:
                self.collector.on_delta(delta)
            reasoning = _reasoning_of(delta)
            if reasoning:
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if type(content) is not str:
                content = _content_text(delta, "choices[0].delta.content")
            if content:
                out.append(TextDelta(content))
            refusal = delta.get("refusal")
            if refusal:
                out.append(RefusalDelta(text_field(delta, "refusal", "choices[0].delta.refusal") or ""))
            calls = delta.get("tool_calls")
            if calls:
                if type(calls) is not list:
                    calls = list_field(delta, "tool_calls", "choices[0].delta.tool_calls") or []
                for position, call in enumerate(calls):
                    out.append(self._tool_delta(call, position))

    def _tool_delta(self, call: Any, position: int) -> ToolCallDelta:
        where = f"choices[0].delta.tool_calls[{position}]"
        if type(call) is not dict and not isinstance(call, Mapping):
            raise MalformedAnswer(where, "an object", call)
        function = mapping_field(call, "function", f"{where}.function") or {}
        call_id = text_field(call, "id", f"{where}.id")
        name = text_field(function, "name", f"{where}.function.name") or None
        index = int_field(call, "index", f"{where}.index")
        if index is not None:
            key = f"i{index}"
        elif call_id:
            key = f"d{call_id}"  # Whole calls sent without index (Azure catalog, Ollama /v1): one per id.
        else:
            key = f"p{position}"
        slot = self._slot_for(key, call_id, name, by_position=index is None and not call_id)
        if self.collector is not None:
            self.collector.on_call(slot, call)
        arguments = _tool_arguments(function, f"{where}.function.arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return ToolCallDelta(index=slot, id=call_id, name=name, arguments=arguments or "")

    def _slot_for(self, key: str, call_id: str | None, name: str | None, *, by_position: bool) -> int:
        """The call (numbered in order of appearance) a delta belongs to."""
        slot = self._tool_slots.get(key)
        if slot is None or self._another_call(slot, call_id, name, by_position):
            slot = self._tool_slots[key] = self._next_slot
            self._next_slot += 1
        if call_id:
            self._slot_ids.setdefault(slot, call_id)
        if name is not None:
            self._named_slots.add(slot)
        return slot

    def _another_call(self, slot: int, call_id: str | None, name: str | None, by_position: bool) -> bool:
        """Whether a delta that maps onto `slot` in fact starts another call."""
        if call_id and self._slot_ids.get(slot, call_id) != call_id:
            # A different id at an index already in use: Ollama /v1 sends parallel calls all at
            # index 0, told apart only by their ids.
            return True
        # Without index or id, a second name is a second whole call, not a fragment.
        return by_position and name is not None and slot in self._named_slots

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
