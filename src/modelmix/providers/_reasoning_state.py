"""Opaque reasoning state: taken from answers, carried back on later turns, sans-I/O.

Reasoning models leave things in an answer that only their own server can read and that the next
request must carry back for the model to keep its train of thought (or, for some servers, to be
accepted at all):

- the Responses API's reasoning items, with ``encrypted_content`` when the request asked for it
  (``include: ["reasoning.encrypted_content"]``) and nothing is stored on the server;
- on chat completions, what the profile's ``reasoning_echo`` names, on a turn that called tools:
  DeepSeek's ``reasoning_content`` (its thinking mode answers HTTP 400 without it),
  OpenRouter's ``reasoning_details``, Gemini's thought signatures (``extra_content`` on the
  message and on each tool call).

All of it lands in the assistant message's `ReasoningState`, stamped with the origin of the call,
and goes back only in a request to that same origin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._messages import Message, ReasoningState
from .._response import ChatResponse

__all__ = [
    "ChatStateCollector",
    "add_chat_echo",
    "chat_state",
    "echoed_reasoning_items",
    "reasoning_item",
    "with_state",
]


def with_state(response: ChatResponse, state: ReasoningState | None) -> ChatResponse:
    """`response` whose message carries `state` (as it is when there is none)."""
    if state is None:
        return response
    return response.model_copy(update={"message": response.message.model_copy(update={"reasoning_state": state})})


def echoed_reasoning_items(message: Message, origin: str) -> list[dict[str, Any]]:
    """The Responses reasoning items to send before `message`'s own items (none unless the
    message came from `origin`)."""
    state = message.reasoning_state
    if state is None or not origin or state.origin != origin:
        return []
    return [dict(item) for item in state.items]


def reasoning_item(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to keep of a Responses output item of type ``reasoning``: only one the server can
    read back without stored state (it has ``encrypted_content``); ``status`` and an empty
    ``content`` are left out, as the input side does not take them everywhere."""
    if item.get("type") != "reasoning" or not isinstance(item.get("encrypted_content"), str):
        return None
    kept: dict[str, Any] = {"type": "reasoning"}
    for key in ("id", "encrypted_content", "summary", "content"):
        value = item.get(key)
        if value is not None and (key != "content" or value):
            kept[key] = value
    kept.setdefault("summary", [])  # the input item requires one, even empty
    return kept


def add_chat_echo(wire: dict[str, Any], message: Message, origin: str) -> None:
    """Add to `wire` (`message` encoded for chat completions) what its state carries back, when
    the request goes to the `origin` the state came from and the turn called tools."""
    state = message.reasoning_state
    if state is None or not origin or state.origin != origin or not message.tool_calls:
        return
    wire.update(state.fields)
    for call, fields in zip(wire.get("tool_calls") or (), state.call_fields, strict=False):
        call.update(fields)


def chat_state(
    origin: str, echo: frozenset[str], message: Mapping[str, Any], calls: Sequence[Any]
) -> ReasoningState | None:
    """The state a complete chat answer's `message` leaves (None: nothing to carry)."""
    if not origin or not echo or not calls:
        return None
    collector = ChatStateCollector(origin, echo)
    collector.on_delta(message)
    for position, call in enumerate(calls):
        if isinstance(call, Mapping):
            collector.on_call(position, call)
    return collector.state(has_calls=True)


class ChatStateCollector:
    """Gathers the state from a chat answer as it streams (or, whole, from its message)."""

    def __init__(self, origin: str, echo: frozenset[str]) -> None:
        self._origin = origin
        self._echo = echo
        self._reasoning: list[str] = []
        self._details: dict[Any, dict[str, Any]] = {}  # reasoning_details entries by their index
        self._extra: dict[str, Any] | None = None
        self._calls: dict[int, dict[str, Any]] = {}

    def on_delta(self, delta: Mapping[str, Any]) -> None:
        echo = self._echo
        if "reasoning_content" in echo and isinstance(delta.get("reasoning_content"), str):
            self._reasoning.append(delta["reasoning_content"])
        details = delta.get("reasoning_details")
        if "reasoning_details" in echo and isinstance(details, list):
            for position, detail in enumerate(details):
                if isinstance(detail, Mapping):
                    self._add_detail(detail, position)
        extra = delta.get("extra_content")
        if "thought_signature" in echo and isinstance(extra, Mapping):
            self._extra = dict(extra)

    def _add_detail(self, detail: Mapping[str, Any], position: int) -> None:
        """A streamed entry arrives in pieces sharing an ``index``: texts are joined, the other
        fields (signature, format, encrypted data) kept from whichever piece carried them."""
        key = detail.get("index", f"p{position}")
        entry = self._details.get(key)
        if entry is None:
            self._details[key] = dict(detail)
            return
        for field, value in detail.items():
            if field in ("text", "summary", "data") and isinstance(value, str) and isinstance(entry.get(field), str):
                entry[field] += value
            elif value not in (None, "") or field not in entry:
                entry[field] = value

    def on_call(self, slot: int, call: Mapping[str, Any]) -> None:
        extra = call.get("extra_content")
        if "thought_signature" in self._echo and isinstance(extra, Mapping):
            self._calls[slot] = {"extra_content": dict(extra)}

    def state(self, *, has_calls: bool) -> ReasoningState | None:
        """The state, if the answer called tools and left any."""
        if not has_calls:
            return None
        fields: dict[str, Any] = {}
        reasoning = "".join(self._reasoning)
        if reasoning:
            fields["reasoning_content"] = reasoning
        if self._details:
            fields["reasoning_details"] = list(self._details.values())
        if self._extra:
            fields["extra_content"] = self._extra
        call_fields = [self._calls.get(slot, {}) for slot in range(max(self._calls) + 1)] if self._calls else []
        if not fields and not call_fields:
            return None
        return ReasoningState(origin=self._origin, fields=fields, call_fields=call_fields)
