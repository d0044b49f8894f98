"""What modelmix knows about models: context windows, output limits, prices and capabilities.

The built-in catalog is a data file shipped in the package (``_catalog.json``, read by
`_catalog_file`), loaded once on first use. Prices are USD per million tokens as `Decimal`; every
entry says when its figures were checked and where they come from. Overrides — `register_model_info`
at run time, `load_catalog` from the user's own file — always win over the built-in list prices.

Usage semantics follow the vendors: cached and cache-write tokens are parts of the input tokens,
reasoning tokens part of the output tokens (so they are billed as output).
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._response import ChatResponse, Usage
from . import _catalog_file
from ._price_math import exact_cost

if TYPE_CHECKING:
    from .._model import Model

# Public names are exported (and listed) by `modelmix.tokens`.

CAPABILITIES = frozenset({"tools", "json_schema", "vision", "reasoning"})
"""What a catalog entry may list under ``capabilities``."""

_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


PriceInput = Decimal | str | int | float
"""A price as `ModelInfo` takes it; stored as `Decimal`."""


@dataclass(frozen=True, init=False)
class ModelInfo:
    """What is known about one model. Prices are USD per million tokens (`Decimal`); None is unknown.

    `cached_input_per_mtok` prices prompt tokens served from the provider's cache and
    `cache_write_per_mtok` prompt tokens written to it; when either is None those tokens are
    billed at the input price (the vendors without a cache discount or a write fee do that).
    `capabilities` lists what the model is known to support among ``tools``, ``json_schema``,
    ``vision`` and ``reasoning`` (None: not known). `checked` (``YYYY-MM-DD`` or ``YYYY-MM``) and
    `source` (a URL) say when and where the figures were last checked.

    Prices may be given as `Decimal`, `str`, `int` or `float` (a float is read as it is written,
    ``0.15`` → ``Decimal("0.15")``).
    """

    context_window: int | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None
    cache_write_per_mtok: Decimal | None
    max_output_tokens: int | None
    family: str | None
    capabilities: frozenset[str] | None
    checked: str | None
    source: str | None
    name: str | None
    """The catalog name of the entry (set for built-in and file entries)."""

    def __init__(
        self,
        context_window: int | None = None,
        input_per_mtok: PriceInput | None = None,
        output_per_mtok: PriceInput | None = None,
        cached_input_per_mtok: PriceInput | None = None,
        *,
        cache_write_per_mtok: PriceInput | None = None,
        max_output_tokens: int | None = None,
        family: str | None = None,
        capabilities: Iterable[str] | None = None,
        checked: str | datetime.date | None = None,
        source: str | None = None,
        name: str | None = None,
    ) -> None:
        prices = {
            "input_per_mtok": input_per_mtok,
            "output_per_mtok": output_per_mtok,
            "cached_input_per_mtok": cached_input_per_mtok,
            "cache_write_per_mtok": cache_write_per_mtok,
        }
        for field_name, value in prices.items():
            object.__setattr__(self, field_name, _price(field_name, value))
        for field_name, count in (("context_window", context_window), ("max_output_tokens", max_output_tokens)):
            _check_count(field_name, count)
            object.__setattr__(self, field_name, count)
        object.__setattr__(self, "capabilities", _capabilities(capabilities))
        object.__setattr__(self, "checked", _date(checked))
        for field_name, text in (("family", family), ("source", source), ("name", name)):
            if text is not None and not isinstance(text, str):
                raise ConfigurationError(f"ModelInfo({field_name}=...) takes a string, not {text!r}")
            object.__setattr__(self, field_name, text)

    @property
    def priced(self) -> bool:
        """True when the input and output prices are both known."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def cost(self, usage: Usage) -> Decimal | None:
        """USD cost of a call with this usage, or None when the input or output price is unknown."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return exact_cost(
            usage,
            input_price=self.input_per_mtok,
            output_price=self.output_per_mtok,
            cached_price=self.cached_input_per_mtok,
            cache_write_price=self.cache_write_per_mtok,
        )

    def worst_case_cost(self, input_tokens: int, output_tokens: int) -> Decimal | None:
        """The most a call of `input_tokens` in and up to `output_tokens` out can cost at list price
        (no cache discount assumed); None when a price is unknown. Budgets reserve this much."""
        return self.cost(Usage(input_tokens=input_tokens, output_tokens=output_tokens))


def _price(field_name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, str, int, float)):
        raise ConfigurationError(f"ModelInfo({field_name}=...) takes a number or a numeric string, not {value!r}")
    try:
        # str(float) is the shortest text that reads back as the float: what the user wrote.
        price = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"ModelInfo({field_name}=...) is not a number: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise ConfigurationError(f"ModelInfo({field_name}=...) must be a finite price >= 0, not {value!r}")
    return price


def _capabilities(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigurationError(f"ModelInfo(capabilities=...) takes a list of names, not the string {value!r}")
    capabilities = frozenset(value)
    unknown = capabilities - CAPABILITIES
    if unknown:
        raise ConfigurationError(
            f"ModelInfo(capabilities=...) has unknown entries {sorted(unknown)}: use {sorted(CAPABILITIES)}"
        )
    return capabilities


def _date(value: str | datetime.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return value.isoformat()[:10]
    if not isinstance(value, str) or not _DATE.match(value):
        raise ConfigurationError(f"ModelInfo(checked=...) takes a date 'YYYY-MM-DD' or 'YYYY-MM', not {value!r}")
    return value


def _check_count(field_name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigurationError(f"ModelInfo({field_name}=...) must be a whole number of tokens > 0, not {value!r}")


# ------------------------------------------------------------------------------ lookups

_overrides: dict[str, ModelInfo] = {}
_lock = threading.Lock()
# Look-ups are answered from here until an override changes: pricing runs on every response, and
# the catalog's answer for a name only changes when someone registers or loads a price.
_resolved: dict[Any, ModelInfo | None] = {}
_resolved_for: list[dict[str, ModelInfo]] = [_overrides]
"""The override table the remembered answers were computed from (a test may swap it)."""
_MAX_RESOLVED = 4096


def _remembered(key: Any) -> ModelInfo | None:
    """The remembered answer for `key`; raises KeyError when there is none (or it is stale)."""
    if _resolved_for[0] is not _overrides:
        _resolved.clear()
        _resolved_for[0] = _overrides
    return _resolved[key]


def _remember(key: Any, info: ModelInfo | None) -> ModelInfo | None:
    if len(_resolved) >= _MAX_RESOLVED:
        _resolved.clear()
    _resolved[key] = info
    return info


# Servers report dated snapshots ("gpt-4o-mini-2024-07-18"); prices belong to the alias unless the
# snapshot has an entry of its own.
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@cache
def _builtin() -> _catalog_file.Catalog:
    return _catalog_file.load_builtin(ModelInfo)


def _local_info(provider: str) -> ModelInfo:
    return _builtin().local_provider_info(provider)


PRICES_AS_OF = "2025-08-07"
"""The newest `checked` date in the built-in catalog (see each entry's own date)."""


def catalog_entries() -> list[ModelInfo]:
    """Every entry of the built-in catalog (without your overrides), in the file's order."""
    return _builtin().models


def register_model_info(name: str, info: ModelInfo) -> None:
    """Declare or override what is known about `name`: a model, a deployment (``"my-deployment"``)
    or one model of one provider (``"azure:my-deployment"``). Overrides win over the built-in
    catalog, so a deployment's negotiated prices replace the list prices."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"register_model_info(name=...) takes a model or deployment name, not {name!r}")
    if not isinstance(info, ModelInfo):
        raise ConfigurationError(f"register_model_info(info=...) takes a ModelInfo, not {type(info).__name__}")
    with _lock:
        _overrides[name.strip().lower()] = info
        _resolved.clear()


def load_catalog(path: str | Any) -> list[str]:
    """Read catalog entries from your own JSON file (the built-in file's format, see the cost guide)
    and register each as an override; returns the names registered. Nothing is read implicitly:
    call it where your application starts."""
    entries = _catalog_file.load_user_file(path, ModelInfo)
    with _lock:
        for key, info in entries.items():
            _overrides[key] = info
        _resolved.clear()
    return sorted({info.name or key for key, info in entries.items()})


def _override(name: str) -> ModelInfo | None:
    full = name.lower()
    bare = full.partition(":")[2]
    for key in (full, bare) if bare else (full,):
        for candidate in (key, _DATE_SUFFIX.sub("", key)):
            found = _overrides.get(candidate)
            if found is not None:
                return found
    return None


def model_info(name: str | None) -> ModelInfo | None:
    """What is known about `name` (``provider:name``, a bare name, a dated snapshot), or None.

    Overrides come first; then models run by a local backend (``local:``, ``ollama:``,
    ``llamacpp:``, ``vllm:``, ``lmstudio:``) cost nothing; then the built-in catalog."""
    if not name:
        return None
    try:
        return _remembered(name)
    except KeyError:
        return _remember(name, _find(name))


def _find(name: str) -> ModelInfo | None:
    found = _override(name)
    if found is not None:
        return found
    provider, _, bare = name.lower().partition(":")
    catalog = _builtin()
    if bare and provider in catalog.local_providers:
        return _local_info(provider)
    found = catalog.find(bare or provider)
    if found is not None and bare and _sells_at_own_prices(provider):
        return _without_prices(found)
    return found


def _sells_at_own_prices(provider: str) -> bool:
    """Whether `provider` is a vendor with its own price list (Mistral, Groq, Bedrock ...): the
    built-in catalog's prices are OpenAI's and Azure's, and a model of the same name there
    costs something else."""
    from .._registry import provider_class

    try:
        found = provider_class(provider)
    except ConfigurationError:
        return False
    return bool(getattr(found, "own_prices", False))


def _without_prices(info: ModelInfo) -> ModelInfo:
    """The entry's limits and capabilities (the same model), without its prices."""
    capabilities = info.capabilities
    return ModelInfo(
        info.context_window,
        max_output_tokens=info.max_output_tokens,
        family=info.family,
        capabilities=capabilities,
        name=info.name,
    )


def cost_of(name: str | None, usage: Usage | None) -> Decimal | None:
    """USD cost of `usage` on model `name`, or None when the usage or the model's prices are unknown."""
    if usage is None:
        return None
    info = model_info(name)
    return info.cost(usage) if info is not None else None


def worst_case_cost(info: ModelInfo | None, input_tokens: int, output_tokens: int) -> Decimal | None:
    """`ModelInfo.worst_case_cost`, None when `info` is None."""
    return info.worst_case_cost(input_tokens, output_tokens) if info is not None else None


@dataclass(frozen=True)
class ModelPricing:
    """How one model finds its catalog entry, in this order: an override registered for the name it
    was addressed by (a deployment's negotiated rates), the explicit `catalog_model`, the model
    the server reports having run, then the addressed name in the catalog."""

    provider: str
    addressed: tuple[str, ...]
    """The names the model answers to (``"smollm2"``, ``"smollm2-135m-instruct"``), without provider."""
    catalog_model: str | None = None

    def info(self, reported: str | None = None) -> ModelInfo | None:
        key = (self, reported)
        try:
            return _remembered(key)
        except KeyError:
            return _remember(key, self._find(reported))

    def _find(self, reported: str | None) -> ModelInfo | None:
        for name in self.addressed:
            found = _override(f"{self.provider}:{name}")
            if found is not None:
                return found
        if self.catalog_model:
            found = model_info(self.catalog_model)
            if found is not None:
                return found
        if reported:
            found = model_info(f"{self.provider}:{reported}")
            if found is not None:
                return found
        for name in self.addressed:
            found = model_info(f"{self.provider}:{name}")
            if found is not None:
                return found
        return None

    def cost(self, usage: Usage | None, reported: str | None = None) -> Decimal | None:
        if usage is None:
            return None
        info = self.info(reported)
        return info.cost(usage) if info is not None else None

    def priced(self, response: ChatResponse) -> ChatResponse:
        """`response` with its `cost` filled in (kept when it already has one)."""
        if response.cost is not None or response.usage is None:
            return response
        cost = self.cost(response.usage, response.model)
        return response if cost is None else response.model_copy(update={"cost": cost})


def pricing_for(provider: str, names: Iterable[str], catalog_model: str | None = None) -> ModelPricing:
    unique = tuple(dict.fromkeys(name for name in names if name))
    if catalog_model is not None and (not isinstance(catalog_model, str) or not catalog_model.strip()):
        raise ConfigurationError(f"catalog_model= takes a catalog model name like 'gpt-4o', not {catalog_model!r}")
    return ModelPricing(provider, unique, catalog_model.strip() if catalog_model else None)


def info_for_model(model: Model) -> ModelInfo | None:
    """The catalog entry a model is priced by (for a wrapper: the model it wraps); None if unknown.
    A fallback chain has no single entry: ask each member."""
    inner = model.unwrap()
    pricing = getattr(inner, "pricing", None)
    if isinstance(pricing, ModelPricing):
        return pricing.info()
    return model_info(f"{inner.provider}:{inner.name}")


def with_cost(response: ChatResponse, requested: str) -> ChatResponse:
    """The response with `cost` filled in, priced by the model that answered, else the one asked for."""
    provider, _, bare = requested.partition(":")
    pricing = pricing_for(provider, [bare]) if bare else pricing_for(response.provider, [requested])
    return pricing.priced(response)
