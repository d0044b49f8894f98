"""What modelmix knows about models: context windows and prices, for `ChatResponse.cost` and for
fallback chains that skip to a model whose window fits.

The built-in table covers OpenAI models whose list prices are long established. Prices are USD per
million tokens, from OpenAI's public pricing page (openai.com/api/pricing) as published on
2025-08-07; they change, so verify before billing anyone and override with `register_model_info`
(also the way to price Azure deployments, whose names are yours).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .._response import ChatResponse, Usage

__all__ = ["PRICES_AS_OF", "ModelInfo", "cost_of", "declare_free", "model_info", "register_model_info", "with_cost"]

PRICES_AS_OF = "2025-08-07"


@dataclass(frozen=True)
class ModelInfo:
    """Context window and prices (USD per million tokens) of one model. Unknown values are None."""

    context_window: int | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cached_input_per_mtok: float | None = None
    """Price of prompt tokens served from the provider's cache; the input price when None."""

    def cost(self, usage: Usage) -> float | None:
        """USD cost of a call with this usage, or None when the prices are unknown."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        cached = min(usage.cached_tokens or 0, usage.input_tokens)
        cached_price = self.cached_input_per_mtok if self.cached_input_per_mtok is not None else self.input_per_mtok
        total = (
            (usage.input_tokens - cached) * self.input_per_mtok
            + cached * cached_price
            + usage.output_tokens * self.output_per_mtok
        )
        return total / 1_000_000


_BUILTIN: dict[str, ModelInfo] = {
    "gpt-4o": ModelInfo(128_000, 2.50, 10.00, 1.25),
    "gpt-4o-mini": ModelInfo(128_000, 0.15, 0.60, 0.075),
    "gpt-4.1": ModelInfo(1_047_576, 2.00, 8.00, 0.50),
    "gpt-4.1-mini": ModelInfo(1_047_576, 0.40, 1.60, 0.10),
    "gpt-4.1-nano": ModelInfo(1_047_576, 0.10, 0.40, 0.025),
    "gpt-5": ModelInfo(400_000, 1.25, 10.00, 0.125),
    "gpt-5-mini": ModelInfo(400_000, 0.25, 2.00, 0.025),
    "gpt-5-nano": ModelInfo(400_000, 0.05, 0.40, 0.005),
    "o1": ModelInfo(200_000, 15.00, 60.00, 7.50),
    "o3": ModelInfo(200_000, 2.00, 8.00, 0.50),
    "o3-mini": ModelInfo(200_000, 1.10, 4.40, 0.55),
    "o4-mini": ModelInfo(200_000, 1.10, 4.40, 0.275),
}
_registered: dict[str, ModelInfo] = {}
_free: set[str] = set()
_FREE = ModelInfo(input_per_mtok=0.0, output_per_mtok=0.0)
_lock = threading.Lock()

# Servers report dated snapshots ("gpt-4o-mini-2024-07-18"); prices belong to the alias.
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def register_model_info(name: str, info: ModelInfo) -> None:
    """Declare or override a model's context window and prices (by model or deployment name)."""
    with _lock:
        _registered[name.lower()] = info


def declare_free(name: str) -> None:
    """Price `name` at zero unless a price is registered for it: a model run in this process
    (``local:``) costs nothing per token, so its responses report a cost of 0 rather than unknown."""
    with _lock:
        _free.add(name.lower())


def model_info(name: str | None) -> ModelInfo | None:
    """What is known about `name` (also accepts ``provider:name`` and dated snapshot names)."""
    if not name:
        return None
    full = name.lower()
    without_provider = full.partition(":")[2]
    for key in (full, without_provider):
        for candidate in (key, _DATE_SUFFIX.sub("", key)):
            found = _registered.get(candidate) or _BUILTIN.get(candidate)
            if found is not None:
                return found
    if full in _free or without_provider in _free:
        return _FREE
    return None


def cost_of(name: str | None, usage: Usage | None) -> float | None:
    """USD cost of `usage` on model `name`, or None when the model's prices are unknown."""
    if usage is None:
        return None
    info = model_info(name)
    return info.cost(usage) if info is not None else None


def with_cost(response: ChatResponse, requested: str) -> ChatResponse:
    """The response with `cost` filled in, priced by the model that answered, else the one asked for."""
    if response.cost is not None or response.usage is None:
        return response
    cost = cost_of(response.model, response.usage)
    if cost is None:
        cost = cost_of(requested, response.usage)
    return response if cost is None else response.model_copy(update={"cost": cost})
