"""Checks of the wrappers' numeric arguments, so ``fallback(deadline=-1)`` is a
`ConfigurationError` naming the argument when the wrapper is built, not a chain that fails every
call (or never gives up) later."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._exceptions import ConfigurationError

__all__ = ["check_breaker_config", "check_count", "check_models", "check_seconds"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_seconds(function: str, name: str, value: Any, *, optional: bool = False, zero: bool = False) -> None:
    """`value` is a number of seconds: > 0, or >= 0 with `zero`; None allowed with `optional`."""
    if value is None and optional:
        return
    if _is_number(value) and (value >= 0 if zero else value > 0) and value == value:  # NaN fails
        return
    accepted = "a number of seconds " + (">= 0" if zero else "> 0") + (" or None (no limit)" if optional else "")
    raise ConfigurationError(f"{function}({name}=...) must be {accepted}, got {value!r}")


def check_count(function: str, name: str, value: Any, *, minimum: int = 0) -> None:
    """`value` is a whole number >= `minimum`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return
    raise ConfigurationError(f"{function}({name}=...) must be a whole number >= {minimum}, got {value!r}")


def check_models(function: str, models: Any) -> None:
    """Every member is a `Model` or a ``"provider:model"`` string."""
    from .._model import Model

    for position, member in enumerate(models):
        if not isinstance(member, (Model, str)):
            raise ConfigurationError(
                f"{function}() takes models or 'provider:model' strings; argument {position + 1} is a "
                f"{type(member).__name__}"
            )


# BreakerConfig field → (lowest value, whether the lowest is allowed, highest or None, whole number).
_BREAKER_RANGES: dict[str, tuple[float, bool, float | None, bool]] = {
    "window": (1, True, None, True),
    "min_calls": (1, True, None, True),
    "failure_rate": (0, False, 1, False),
    "consecutive_failures": (1, True, None, True),
    "open_base": (0, False, None, False),
    "open_cap": (0, False, None, False),
    "jitter": (0, True, 1, False),
    "misconfigured_open": (0, False, None, False),
    "rate_limit_cooldown": (0, True, None, False),
}


def check_breaker_config(function: str, config: Any) -> None:
    """The thresholds of a `BreakerConfig` are in range (fields this table doesn't know pass)."""
    if config is None:
        return
    from ._breaker import BreakerConfig

    if not isinstance(config, BreakerConfig):
        raise ConfigurationError(f"{function}(config=...) takes a BreakerConfig, not {type(config).__name__}")
    for field in dataclasses.fields(config):
        if field.name not in _BREAKER_RANGES:
            continue
        low, low_ok, high, whole = _BREAKER_RANGES[field.name]
        value = getattr(config, field.name)
        fits = (isinstance(value, int) if whole else True) and _is_number(value) and value == value
        fits = fits and (value >= low if low_ok else value > low) and (high is None or value <= high)
        if not fits:
            bound = f">= {low}" if low_ok else f"> {low}"
            upper = f" and <= {high}" if high is not None else ""
            kind = "a whole number" if whole else "a number"
            raise ConfigurationError(f"BreakerConfig({field.name}=...) must be {kind} {bound}{upper}, got {value!r}")
    if _is_number(getattr(config, "open_cap", None)) and getattr(config, "open_cap", 0) < getattr(
        config, "open_base", 0
    ):
        raise ConfigurationError(
            f"BreakerConfig(open_cap=...) must be >= open_base ({config.open_base}), got {config.open_cap!r}"
        )
