"""Checks of the wrappers' numeric arguments, so ``fallback(deadline=-1)`` is a
`ConfigurationError` naming the argument when the wrapper is built, not a chain that fails every
call (or never gives up) later."""

from __future__ import annotations

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


def check_breaker_config(function: str, config: Any) -> None:
    """`config` is a `BreakerConfig` whose cooldown cap is not below its base."""
    if config is None:
        return
    from ._breaker import BreakerConfig

    if not isinstance(config, BreakerConfig):
        raise ConfigurationError(f"{function}(config=...) takes a BreakerConfig, not {type(config).__name__}")
    # Its own thresholds are checked when a BreakerConfig is built (`BreakerConfig.__post_init__`).
    if _is_number(getattr(config, "open_cap", None)) and getattr(config, "open_cap", 0) < getattr(
        config, "open_base", 0
    ):
        raise ConfigurationError(
            f"BreakerConfig(open_cap=...) must be >= open_base ({config.open_base}), got {config.open_cap!r}"
        )
