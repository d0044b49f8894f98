"""Exact cost arithmetic: token counts times `Decimal` prices, in modelmix's own decimal context."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from .._exact import EXACT as _EXACT
from .._response import Usage

__all__ = ["exact_cost", "exact_sum"]

_ZERO = Decimal(0)
_ONE = Decimal(1)


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
    input_tokens = max(usage.input_tokens, 0)
    cached = min(max(usage.cached_tokens or 0, 0), input_tokens)
    written = min(max(usage.cache_write_tokens or 0, 0), input_tokens - cached)
    plain = input_tokens - cached - written
    # The context multiplies an int count by a price exactly; no Decimal is built for the count
    # (this runs once per call).
    multiply, add = _EXACT.multiply, _EXACT.add
    per_million = add(multiply(plain, input_price), multiply(max(usage.output_tokens, 0), output_price))
    if cached:
        per_million = add(per_million, multiply(cached, input_price if cached_price is None else cached_price))
    if written:
        per_million = add(
            per_million, multiply(written, input_price if cache_write_price is None else cache_write_price)
        )
    return _plain(per_million.scaleb(-6, _EXACT))


def _plain(value: Decimal) -> Decimal:
    """The same value without trailing zeros and never in exponent form: ``0.000180000`` →
    ``0.00018``, ``1E+1`` → ``10`` (what `print` and f-strings then show)."""
    normalized = value.normalize(_EXACT)
    # A positive exponent (``1E+1``) only comes with a whole number of at least 10: below that,
    # the exponent is not worth reading.
    if normalized < 10:
        return normalized
    exponent = normalized.as_tuple().exponent
    return normalized.quantize(_ONE, context=_EXACT) if isinstance(exponent, int) and exponent > 0 else normalized
