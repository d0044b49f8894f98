"""Repairs for servers that don't quite speak OpenAI (sans-I/O), switched on by `ModelProfile` fields.

Three repairs; the OpenAI codec applies whichever the call's profile asks for:

- **No system role** (``system_role=False``: DeepSeek-R1, older Phi and Mistral on Azure): system
  and developer messages are folded into the first user turn.

- **Usage a server did not send** (``estimate_usage``). Older Ollama ``/v1``, LM Studio and llama-cpp-python never put
  usage in a stream. modelmix then counts it itself, offline, and marks it ``estimated=True``,
  with the one offline estimate `count_tokens` also uses for models without a shipped tokenizer
  (`modelmix.tokens._estimate`: a heuristic for BPE vocabularies plus 4 tokens of framing per
  message and 3 for the reply). Expect ±20 % on English prose; exact counts need the server to
  report usage.
- **Tool calls written as text** (``text_tool_calls``). Small models served without a tool parser (Qwen and Hermes
  templates on Ollama ``/v1``, llama.cpp without ``--jinja``) print
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` as plain content. When the
  request offered tools, those blocks become real tool calls (streamed and not), and the tags
  leave the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._codec import ErrorContext, RequestContext
from .._events import ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, UsageEvent
from .._messages import Message, TextPart, ToolCall
from .._response import ChatResponse, Usage
from .._streaming import StreamParser
from ..tokens._estimate import estimate_prompt_tokens, estimate_text_tokens
from ._wire_fields import loads_json

__all__ = [
    "CompatStreamParser",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "extract_text_tool_calls",
    "fold_system_messages",
    "repair_response",
    "repairing_parser",
]

_OPEN = "<tool_call>"
_CLOSE = "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_TEXT_CALL_BASE = 1000
"""Stream slots for calls found in text start here so they never collide with real tool-call deltas."""


def _call_from_block(block: str, index: int) -> ToolCall | None:
    data, valid = loads_json(block)
    if not valid or not isinstance(data, Mapping) or not isinstance(data.get("name"), str) or not data["name"]:
        return None
    arguments = data.get("arguments", data.get("parameters"))
    if not isinstance(arguments, (str, Mapping)):
        arguments = None
    return ToolCall.from_raw(f"call_{index}", data["name"], arguments)


def extract_text_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split ``<tool_call>{json}</tool_call>`` blocks out of `text`. Blocks that are not a
    valid call stay in the text; when nothing matches, the text comes back unchanged."""
    calls: list[ToolCall] = []

    def replace(match: re.Match[str]) -> str:
        call = _call_from_block(match.group(1), len(calls))
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    remaining = _BLOCK.sub(replace, text)
    if not calls:
        return text, []
    return remaining.strip(), calls


def fold_system_messages(messages: list[Message]) -> list[Message]:
    """System/developer messages folded into the first user turn (or one made of them)."""
    instructions = [m.text for m in messages if m.role in ("system", "developer") and m.text]
    rest = [m for m in messages if m.role not in ("system", "developer")]
    if not instructions:
        return rest
    preamble = "\n\n".join(instructions)
    for index, message in enumerate(rest):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                folded: Message = message.model_copy(update={"content": [TextPart(text=preamble + "\n\n"), *content]})
            else:
                folded = message.model_copy(update={"content": f"{preamble}\n\n{content or ''}".rstrip()})
            return [*rest[:index], folded, *rest[index + 1 :]]
    return [Message(role="user", content=preamble), *rest]


def _prompt_estimate(call: RequestContext) -> int | None:
    if not call.profile.estimate_usage:
        return None
    return estimate_prompt_tokens(call.messages, call.settings.get("tools"))


def repair_response(response: ChatResponse, call: RequestContext) -> ChatResponse:
    """The repairs `call`'s profile asks for, applied to a complete answer."""
    text_calls = call.profile.text_tool_calls and "<tool_call>" in response.text
    if (response.usage is not None or not call.profile.estimate_usage) and not text_calls:
        return response
    return _repair(
        response,
        prompt_tokens=_prompt_estimate(call),
        tools_offered=bool(call.settings.get("tools")),
        text_tool_calls=call.profile.text_tool_calls,
    )


def repairing_parser(parser: StreamParser, call: RequestContext) -> StreamParser:
    """`parser`, wrapped with the stream repairs `call`'s profile asks for (or as it is)."""
    parse_tags = call.profile.text_tool_calls and bool(call.settings.get("tools"))
    if not parse_tags and not call.profile.estimate_usage:
        return parser
    return CompatStreamParser(parser, prompt_tokens=_prompt_estimate(call), parse_text_tool_calls=parse_tags)


def _repair(
    response: ChatResponse,
    *,
    prompt_tokens: int | None,
    tools_offered: bool,
    text_tool_calls: bool,
) -> ChatResponse:
    """Apply both repairs to a complete answer."""
    update: dict[str, Any] = {}
    message = response.message
    if text_tool_calls and tools_offered and not message.tool_calls and _OPEN in message.text:
        text, calls = extract_text_tool_calls(message.text)
        if calls:
            message = Message(role="assistant", content=text or None, tool_calls=calls)
            update["message"] = message
            if response.finish_reason in (None, "stop"):
                update["finish_reason"] = "tool_calls"
    if response.usage is None and prompt_tokens is not None:
        output = estimate_text_tokens(response.message.text) + estimate_text_tokens(response.reasoning or "")
        output += sum(estimate_text_tokens(c.raw_arguments) + 1 for c in response.message.tool_calls)
        update["usage"] = Usage(input_tokens=prompt_tokens, output_tokens=output, estimated=True)
    return response.model_copy(update=update) if update else response


class CompatStreamParser:
    """Wraps the OpenAI stream parser: turns ``<tool_call>`` text into tool-call deltas (when
    tools were offered) and adds an estimated `UsageEvent` at the end when the server sent none.

    Text that might be the start of a tag is held back only until it can be decided, so plain
    answers stream with at most ``len("<tool_call>")`` characters of delay.
    """

    def __init__(self, inner: StreamParser, *, prompt_tokens: int | None, parse_text_tool_calls: bool) -> None:
        self._inner = inner
        self._prompt_tokens = prompt_tokens
        self._parse_tags = parse_text_tool_calls
        self._saw_usage = False
        self._output_tokens = 0
        self._held = ""
        self._inside = False
        self._text_calls = 0
        self._after_call = False
        self._finished = False

    @property
    def done(self) -> bool:
        return self._inner.done

    def bind(self, context: ErrorContext) -> None:
        """Errors come from the wrapped parser: it gets the context."""
        bind = getattr(self._inner, "bind", None)
        if bind is not None:
            bind(context)

    @property
    def model(self) -> str | None:
        return self._inner.model

    @property
    def response_id(self) -> str | None:
        found: str | None = getattr(self._inner, "response_id", None)
        return found

    def completed(self, response: ChatResponse) -> ChatResponse:
        completed = getattr(self._inner, "completed", None)
        return completed(response) if completed is not None else response

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._process(self._inner.feed(chunk))

    def flush(self) -> list[StreamEvent]:
        out = self._process(self._inner.flush())
        if self._finished:
            return out
        self._finished = True
        held, self._held = self._held, ""
        if self._inside:
            out.append(TextDelta(held))  # an unterminated tag is text after all
        else:
            self._emit_text(held, out)
        if not self._saw_usage and self._prompt_tokens is not None:
            usage = Usage(input_tokens=self._prompt_tokens, output_tokens=self._output_tokens, estimated=True)
            out.append(UsageEvent(usage))
        return out

    def _process(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, UsageEvent):
                self._saw_usage = True
            elif isinstance(event, (TextDelta, ReasoningDelta)):
                self._output_tokens += estimate_text_tokens(event.text)
            elif isinstance(event, ToolCallDelta):
                self._output_tokens += estimate_text_tokens(event.arguments) + (1 if event.name else 0)
            if isinstance(event, TextDelta) and self._parse_tags:
                self._on_text(event.text, out)
            else:
                out.append(event)
        return out

    def _on_text(self, text: str, out: list[StreamEvent]) -> None:
        self._held += text
        while self._held:
            if self._inside:
                end = self._held.find(_CLOSE)
                if end < 0:
                    return
                block = self._held[len(_OPEN) : end]
                call = _call_from_block(block.strip(), self._text_calls)
                if call is None:
                    out.append(TextDelta(self._held[: end + len(_CLOSE)]))
                else:
                    out.append(
                        ToolCallDelta(
                            index=_TEXT_CALL_BASE + self._text_calls,
                            id=call.id,
                            name=call.name,
                            arguments=call.raw_arguments,
                        )
                    )
                    self._text_calls += 1
                    self._after_call = True
                self._held = self._held[end + len(_CLOSE) :]
                self._inside = False
                continue
            start = self._held.find(_OPEN)
            if start >= 0:
                self._emit_text(self._held[:start], out)
                self._held = self._held[start:]
                self._inside = True
                continue
            keep = _partial_tag_suffix(self._held)
            ready, self._held = self._held[: len(self._held) - keep], self._held[len(self._held) - keep :]
            self._emit_text(ready, out)
            return

    def _emit_text(self, text: str, out: list[StreamEvent]) -> None:
        if not text:
            return
        if self._after_call:
            # Whitespace right after an extracted call is layout between blocks, not part of an answer.
            text = text.lstrip()
            if not text:
                return
            self._after_call = False
        out.append(TextDelta(text))


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of ``<tool_call>``."""
    for size in range(min(len(_OPEN) - 1, len(text)), 0, -1):
        if _OPEN.startswith(text[-size:]):
            return size
    return 0
