"""The pre-flight context check: a request that cannot fit the model's context window is refused
locally, before anything is sent.

What must fit is the prompt plus the answer asked for: ``max_tokens``, else the longest answer the
model is known to give (its profile, then the catalog), else nothing beyond the prompt. The check
costs next to nothing on an ordinary request: the prompt is only tokenized when a cheap upper
bound — the request's UTF-8 bytes plus generous framing — says it might not fit (a token is never
shorter than one byte). It runs only when the model's window is known.

A count that is only an estimate (no tokenizer for the family) refuses only a request that would
not fit even if the estimate were `ESTIMATE_ERROR` too high; nearer the edge the request is sent
and the server decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._error_tree import ContextLengthExceededError
from ._messages import ImagePart, Message

if TYPE_CHECKING:
    from ._model import Model
    from .tokens._counting import TokenCount

__all__ = [
    "ESTIMATE_ERROR",
    "ContextWindowExceededError",
    "acheck_context",
    "check_context",
    "payload_bytes",
    "requested_output",
    "upper_bound",
]

ESTIMATE_ERROR = 0.2
"""How far an offline estimate may be off (it is calibrated to ±15 %), on the side that matters:
below for the pre-flight check (never refuse what may fit), above for a budget's worst case."""

# Generous framing for the byte bound: OpenAI's recipe spends 3-4 tokens a message and 3 for the
# reply, local chat templates ~10 a message plus a default system prompt; a tool definition is
# rendered as a block about as long as its JSON plus a few fixed tokens. An image's tokens are not
# its bytes (a URL is short, a high-detail image up to ~1,500 tokens).
_PER_MESSAGE = 16
_PER_TOOL = 32
_FIXED = 256
_PER_IMAGE = 1_600


class ContextWindowExceededError(ContextLengthExceededError):
    """Counted before sending: the prompt plus the requested answer do not fit the model's context
    window, so nothing was sent. Also a `ContextLengthExceededError` (what the server would have
    said), so a fallback chain moves on to a member whose window is larger.

    `requested` is the prompt plus the answer, `limit` the window; `input_tokens` and
    `output_tokens` are the two parts, `exact` whether the prompt was counted by the model's own
    tokenizer, `method` how it was counted.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        requested: int,
        input_tokens: int,
        output_tokens: int,
        exact: bool,
        method: str,
        **context: Any,
    ) -> None:
        # Nothing was sent: no status, and the failure happened locally (unless told otherwise).
        context.setdefault("status", None)
        context.setdefault("phase", "local")
        super().__init__(message, limit=limit, requested=requested, **context)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.exact = exact
        self.method = method


ContextWindowExceededError.__module__ = "modelmix"


def requested_output(model: Model, settings: Mapping[str, Any]) -> tuple[int, str]:
    """Tokens the answer may take and where that number comes from: ``max_tokens``, else the
    longest answer the model gives (profile, then catalog), else 0."""
    max_tokens = settings.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        return max_tokens, "max_tokens"
    longest = model_max_output(model)
    if longest is not None:
        return longest, "the model's longest answer"
    return 0, ""


def model_max_output(model: Model) -> int | None:
    """The longest answer `model` gives, where its profile or the catalog says."""
    from .tokens import model_info

    if model.profile.max_output_tokens is not None:
        return model.profile.max_output_tokens
    inner = model.unwrap()
    info = model_info(f"{inner.provider}:{inner.name}")
    longest = getattr(info, "max_output_tokens", None)
    return longest if isinstance(longest, int) else None


def upper_bound(messages: Sequence[Message], payload_bytes: int, tools: int = 0) -> int:
    """A number of prompt tokens the request cannot exceed: `payload_bytes` (the UTF-8 bytes of
    everything the model reads, or more, e.g. the JSON body) plus framing; no tokenizer needed."""
    images = sum(
        1
        for message in messages
        if isinstance(message.content, list)
        for part in message.content
        if isinstance(part, ImagePart)
    )
    return payload_bytes + _PER_MESSAGE * len(messages) + _PER_TOOL * tools + _PER_IMAGE * images + _FIXED


def payload_bytes(messages: Sequence[Message], settings: Mapping[str, Any]) -> int:
    """The UTF-8 size of what the model reads — texts, tool calls, tool definitions, a response
    format — for `upper_bound` when there is no request body to measure."""
    from .providers._openai_wire import encode_response_format, encode_tool

    size = 0
    for message in messages:
        size += len(message.text.encode("utf-8")) + len((message.name or "").encode("utf-8"))
        for call in message.tool_calls:
            arguments = call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)
            size += len(call.name.encode("utf-8")) + len(arguments.encode("utf-8"))
    read: list[Any] = [encode_tool(tool) for tool in settings.get("tools") or ()]
    if settings.get("response_format") is not None:
        read.append(encode_response_format(settings["response_format"]))
    if read:
        size += len(json.dumps(read, ensure_ascii=False).encode("utf-8"))
    return size


def _tool_count(settings: Mapping[str, Any]) -> int:
    tools = settings.get("tools")
    return len(tools) if isinstance(tools, Sequence) else 0


def _might_overflow(model: Model, messages: Sequence[Message], settings: Mapping[str, Any], payload: int) -> bool:
    window = model.context_window
    if window is None:
        return False
    output, _ = requested_output(model, settings)
    return upper_bound(messages, payload, _tool_count(settings)) + output > window


def check_context(model: Model, messages: Sequence[Message], settings: Mapping[str, Any], payload_bytes: int) -> None:
    """Raise `ContextWindowExceededError` when the request cannot fit `model`'s window.

    `payload_bytes`: the UTF-8 size of what the model reads (the request body will do)."""
    if not _might_overflow(model, messages, settings, payload_bytes):
        return
    from .tokens._counting import count_tokens

    counted = count_tokens(list(messages), model=model, use_server=False, **_count_options(settings))
    _refuse_if_too_long(model, settings, counted)


async def acheck_context(
    model: Model, messages: Sequence[Message], settings: Mapping[str, Any], payload_bytes: int
) -> None:
    """Async `check_context`: a tokenizer's first load runs in a worker thread."""
    if not _might_overflow(model, messages, settings, payload_bytes):
        return
    from .tokens._counting import acount_tokens

    counted = await acount_tokens(list(messages), model=model, use_server=False, **_count_options(settings))
    _refuse_if_too_long(model, settings, counted)


def _count_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.get("tools"):
        options["tools"] = settings["tools"]
    if settings.get("response_format") is not None:
        options["response_format"] = settings["response_format"]
    return options


def _refuse_if_too_long(model: Model, settings: Mapping[str, Any], counted: TokenCount) -> None:
    window = model.context_window
    if window is None:  # pragma: no cover - checked before counting
        return
    output, source = requested_output(model, settings)
    # An estimate refuses only what would not fit even if it were ESTIMATE_ERROR too high.
    prompt = counted.tokens if counted.exact else math.floor(counted.tokens * (1 - ESTIMATE_ERROR))
    if prompt + output <= window:
        return
    inner = model.unwrap()
    how = "counted exactly" if counted.exact else "estimated"
    answer = f" + {output} for the answer ({source})" if output else ""
    advice = (
        "lower max_tokens, "
        if source == "max_tokens" and prompt < window
        else ("set a smaller max_tokens, " if output and prompt < window else "")
    )
    raise ContextWindowExceededError(
        f"the request needs {counted.tokens} prompt tokens ({how}, {counted.method}){answer} = "
        f"{counted.tokens + output} tokens, but {inner.provider}:{inner.name}'s context window is {window}; "
        f"nothing was sent — {advice}shorten the conversation, or use a model with a larger window "
        "(a fallback chain tries the next member whose window fits)",
        limit=window,
        requested=prompt + output,
        input_tokens=counted.tokens,
        output_tokens=output,
        exact=counted.exact,
        method=counted.method,
        provider=inner.provider,
        model=inner.name,
        host=inner.host,
    )
