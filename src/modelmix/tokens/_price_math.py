"""Exact cost arithmetic: token counts times `Decimal` prices, in modelmix's own decimal context."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from .._exact import EXACT as _EXACT
from .._response import Usage

__all__ = ["exact_cost", "exact_sum"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_MEMO_SIZE = 1024
_CostKey = tuple[int, int | None, int | None, int, Decimal, Decimal, Decimal | None, Decimal | None]
"""Token counts (input, cached, cache-write, output), then prices (input, output, cached, cache-write)."""
_costs: dict[_CostKey, Decimal] = {}
"""Costs already worked out: a service sees the same few token counts again and again, and the
decimal arithmetic costs more than modelmix's whole retry wrapper around a call."""


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = _ZERO
    for value in values:
        total = _EXACT.add(total, value)
    return total


def exact_cost(
    usage: Usage,
    *,
    input_price: Decimal,
    output_price: Decimal,
    cached_price: Decimal | None,
    cache_write_price: Decimal | None,
) -> Decimal:
    """USD for `usage` at prices per million tokens. Cached and cache-write tokens are parts of
    the input tokens (billed at the input price when their own price is None); reasoning tokens
    are part of the output tokens. Counts a server got wrong (more cached than input) are clamped."""
    key: _CostKey = (
        usage.input_tokens,
        usage.cached_tokens,
        usage.cache_write_tokens,
        usage.output_tokens,
        input_price,
        output_price,
        cached_price,
        cache_write_price,
    )
    found = _costs.get(key)
    if found is None:
        if len(_costs) >= _MEMO_SIZE:
            _costs.clear()
        found = _costs[key] = _cost(key)
    return found


def _cost(key: _CostKey) -> Decimal:
    input_tokens, cached_tokens, cache_write_tokens, output_tokens = key[:4]
    input_price, output_price, cached_price, written_price = key[4:]
    input_tokens = max(input_tokens, 0)
    cached = min(max(cached_tokens or 0, 0), input_tokens)
    written = min(max(cache_write_tokens or 0, 0), input_tokens - cached)
    plain = input_tokens - cached - written
    terms = (
        (plain, input_price),
        (cached, input_price if cached_price is None else cached_price),
        (written, input_price if written_price is None else written_price),
        (max(output_tokens, 0), output_price),
    )
    per_million = exact_sum(_EXACT.multiply(Decimal(count), price) for count, price in terms if count)
    return _plain(per_million.scaleb(-6, _EXACT))


def _plain(value: Decimal) -> Decimal:
    """The same value without trailing zeros and never in exponent form: ``0.000180000`` →
    ``0.00018``, ``1E+1`` → ``10`` (what `print` and f-strings then show)."""
    normalized = value.normalize(_EXACT)
    exponent = normalized.as_tuple().exponent
    return normalized.quantize(_ONE, context=_EXACT) if isinstance(exponent, int) and exponent > 0 else normalized
