"""The one offline token estimate, for models whose tokenizer modelmix does not have.

Used by `count_tokens` for those models (``exact=False``) and by the repair that fills in usage a
server did not send (``Usage.estimated``).

The base rule is a heuristic for BPE vocabularies: a short word is one token, a long word about
one token per five characters, each punctuation mark and each non-Latin character one token.
A per-family factor then calibrates it. Measured on this project's docs, source code and the chat
messages of the shared recordings (about 160,000 characters):

==========================  ================  =============  =====================
tokenizer                   chars per token   tokens / rule  used for families
==========================  ================  =============  =====================
o200k_base, cl100k_base     3.9–4.3           0.84–0.92      large vocabularies
SmolLM2 (49k vocabulary)    3.4–3.8           0.94–0.98      small vocabularies
==========================  ================  =============  =====================

"Large vocabularies" (100k tokens and more: GPT, Llama 3 and 4, Qwen, DeepSeek, Gemma, Phi-4,
recent Mistral, Cohere, Grok) get a factor of 0.88; "small vocabularies" (Llama 2, Mistral 7B,
Mixtral, Phi-3, SmolLM, TinyLlama) and unknown models keep the rule as it is (1.0), which errs on
the high side for them. The families without a shipped tokenizer are placed by vocabulary size,
not measured. Expect ±15 % on English prose.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .._messages import ImagePart, Message

__all__ = [
    "PER_MESSAGE",
    "REPLY_PRIMING",
    "estimate_family",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
    "framing_tokens",
    "prompt_text_pieces",
]

_PIECES = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
PER_MESSAGE = 4
"""Framing per message when a model's chat template is unknown (OpenAI's older documented 4)."""
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
"""An image in a model whose image cost is unknown: a 1024x1024 image at OpenAI's rates."""

LARGE_VOCABULARY = 0.88
SMALL_VOCABULARY = 1.0

_FAMILIES: tuple[tuple[str, str, float], ...] = (
    (r"llama-?2|mistral-7b|mixtral|phi-?[123]\b|smollm|tinyllama", "small-vocabulary", SMALL_VOCABULARY),
    (
        r"gpt|chatgpt|(^|[^a-z])o[134]|llama|qwen|deepseek|gemma|phi-?4|mistral|ministral|codestral|pixtral"
        r"|command|cohere|grok|mai-ds|jamba",
        "large-vocabulary",
        LARGE_VOCABULARY,
    ),
)


def estimate_family(name: str | None) -> tuple[str, float]:
    """The calibration family of model `name` and its factor (``("unknown", 1.0)`` when no
    pattern matches)."""
    lowered = (name or "").lower()
    for pattern, family, factor in _FAMILIES:
        if re.search(pattern, lowered):
            return family, factor
    return "unknown", 1.0


def _rule(text: str) -> int:
    count = 0
    for piece in _PIECES.findall(text):
        if len(piece) <= 6:  # a short word, a punctuation mark or one non-Latin character
            count += 1
        else:
            count += math.ceil(len(piece) / 5)
    return count


def estimate_text_tokens(text: str, factor: float = 1.0) -> int:
    """Offline token estimate for `text`, scaled by a family's `factor` (see `estimate_family`)."""
    count = _rule(text)
    return math.ceil(count * factor) if count else 0


def prompt_text_pieces(messages: Sequence[Message], tools: Sequence[Any] | None = None) -> list[str]:
    """The texts of a chat request a tokenizer counts: message texts, tool calls, tool definitions."""
    pieces: list[str] = []
    for message in messages:
        pieces.append(message.text)
        for call in message.tool_calls:
            pieces.extend((call.name, call.raw_arguments))
    for tool in tools or ():
        dumped = tool.model_dump() if hasattr(tool, "model_dump") else tool
        pieces.append(json.dumps(dumped, ensure_ascii=False, default=str))
    return [piece for piece in pieces if piece]


def framing_tokens(messages: Sequence[Message]) -> int:
    """What a chat template adds around the texts, when the template is unknown: per message, for
    the reply, and for each image."""
    images = sum(isinstance(part, ImagePart) for m in messages if isinstance(m.content, list) for part in m.content)
    return REPLY_PRIMING + PER_MESSAGE * len(messages) + IMAGE_TOKENS * images


def estimate_prompt_tokens(messages: Sequence[Message], tools: Sequence[Any] | None = None, factor: float = 1.0) -> int:
    """Offline estimate of a chat prompt's size, framing included."""
    pieces = prompt_text_pieces(messages, tools)
    return framing_tokens(messages) + sum(estimate_text_tokens(piece, factor) for piece in pieces)
