"""Token accounting: counting a request's tokens before it is sent, context windows, prices and cost."""

import importlib as _importlib
import typing as _typing

from ._catalog import (
    CAPABILITIES,
    PRICES_AS_OF,
    ModelInfo,
    catalog_entries,
    cost_of,
    info_for_model,
    load_catalog,
    model_info,
    register_model_info,
    with_cost,
    worst_case_cost,
)

if _typing.TYPE_CHECKING:
    from ._counting import CountOptions, TokenCount, Tokenizer, acount_tokens, count_tokens

__all__ = [
    "CAPABILITIES",
    "PRICES_AS_OF",
    "CountOptions",
    "ModelInfo",
    "TokenCount",
    "Tokenizer",
    "acount_tokens",
    "catalog_entries",
    "cost_of",
    "count_tokens",
    "info_for_model",
    "load_catalog",
    "model_info",
    "register_model_info",
    "with_cost",
    "worst_case_cost",
]

# Counting imports tiktoken: loaded on first use, so `import modelmix` stays light.
_LAZY = frozenset({"CountOptions", "TokenCount", "Tokenizer", "acount_tokens", "count_tokens"})


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(f"{__name__}._counting"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
