"""Reading catalog files: the one shipped in the package and the user's own.

Both have the same shape (see ``_catalog.json``): ``{"format": 1, "models": [entry, ...]}`` where
an entry has a ``name``, optional ``aliases``, and the `ModelInfo` fields, prices as strings of
USD per million tokens (``"0.15"``) so no binary float ever touches them. The shipped file also
lists the providers that run models on your own hardware (``local_providers``), priced at zero.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._catalog import ModelInfo

__all__ = ["Catalog", "load_builtin", "load_user_file"]

FORMAT = 1
BUILTIN_FILE = "_catalog.json"
_ENTRY_FIELDS = frozenset(
    {
        "name",
        "aliases",
        "note",
        "context_window",
        "max_output_tokens",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "family",
        "capabilities",
        "checked",
        "source",
    }
)
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")

InfoFactory = Callable[..., "ModelInfo"]


@dataclass
class Catalog:
    """Entries by lower-case name and alias, and the zero-priced local providers."""

    entries: dict[str, ModelInfo] = field(default_factory=dict)
    local_providers: frozenset[str] = frozenset()
    local_checked: str | None = None
    local_source: str | None = None
    _local: dict[str, ModelInfo] = field(default_factory=dict)
    _factory: InfoFactory | None = None

    def find(self, name: str) -> ModelInfo | None:
        key = name.lower()
        return self.entries.get(key) or self.entries.get(_DATE_SUFFIX.sub("", key))

    def local_provider_info(self, provider: str) -> ModelInfo:
        found = self._local.get(provider)
        if found is None:
            assert self._factory is not None
            found = self._factory(
                input_per_mtok="0",
                output_per_mtok="0",
                family="local",
                checked=self.local_checked,
                source=self.local_source,
                name=provider,
            )
            self._local[provider] = found
        return found

    @property
    def models(self) -> list[ModelInfo]:
        """Every entry once (aliases point to the same object)."""
        return list({id(info): info for info in self.entries.values()}.values())


def load_builtin(factory: InfoFactory) -> Catalog:
    text = resources.files(__package__).joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    catalog = _parse(data, factory, where=f"the built-in catalog ({BUILTIN_FILE})", dated=True)
    local = data.get("local_providers") or {}
    catalog.local_providers = frozenset(str(p).lower() for p in local.get("providers", ()))
    catalog.local_checked = local.get("checked")
    catalog.local_source = local.get("source")
    catalog._factory = factory
    return catalog


def load_user_file(path: str | os.PathLike[str], factory: InfoFactory) -> dict[str, ModelInfo]:
    """The entries of a user's catalog file by lower-case name and alias."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(f"load_catalog(path=...) takes a file path, not {type(path).__name__}")
    where = f"catalog file {os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{where} can't be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{where} is not valid JSON: {exc}") from None
    return _parse(data, factory, where=where, dated=False).entries


def _parse(data: Any, factory: InfoFactory, *, where: str, dated: bool) -> Catalog:
    if not isinstance(data, Mapping) or data.get("format") != FORMAT or not isinstance(data.get("models"), list):
        raise ConfigurationError(f'{where} must be a JSON object {{"format": {FORMAT}, "models": [...]}}')
    catalog = Catalog()
    for index, raw in enumerate(data["models"]):
        info, names = _entry(raw, factory, where=f"{where}, entry {index}", dated=dated)
        for name in names:
            key = name.lower()
            if key in catalog.entries:
                raise ConfigurationError(f"{where}: the name {name!r} appears twice")
            catalog.entries[key] = info
    return catalog


def _entry(raw: Any, factory: InfoFactory, *, where: str, dated: bool) -> tuple[ModelInfo, list[str]]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise ConfigurationError(f"{where} needs a 'name'")
    where = f"{where} ({raw['name']!r})"
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise ConfigurationError(f"{where} has unknown fields {sorted(unknown)}; known: {sorted(_ENTRY_FIELDS)}")
    if dated and not (raw.get("checked") and raw.get("source")):
        raise ConfigurationError(f"{where} needs 'checked' (a date) and 'source' (a URL)")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise ConfigurationError(f"{where}: 'aliases' must be a list of names")
    for price in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok"):
        if isinstance(raw.get(price), float):
            # A JSON number is a binary float by the time json.loads returns it: strings keep cents exact.
            raise ConfigurationError(f'{where}: write {price} as a string ("{raw[price]}"), not a JSON number')
    fields = {k: v for k, v in raw.items() if k not in ("aliases", "note")}
    capabilities = fields.get("capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, list):
            raise ConfigurationError(f"{where}: 'capabilities' must be a list or null")
        fields["capabilities"] = frozenset(capabilities)
    try:
        info = factory(**fields)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc.message}") from None
    return info, [raw["name"], *aliases]
