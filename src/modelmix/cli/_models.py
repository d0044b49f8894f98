"""``modelmix models``: which backends are configured and reachable, and what they serve.

Local servers are probed on their configured URL, or their default port on 127.0.0.1, with a
short timeout and all at once, so the command answers in about a second even when nothing
runs. Cloud providers are reported as configured when their key is set; they are not called.
"""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from .._exceptions import ModelMixError, TransportError
from .._registry import list_providers, provider_class
from ..providers._listing import AvailableModel
from ..providers._provider import Provider

__all__ = ["Probe", "print_models", "probe_all"]

PROBE_TIMEOUT = httpx.Timeout(3.0, connect=1.0)


@dataclass
class Probe:
    provider: str
    status: str
    """``ready``, ``reachable``, ``unreachable``, ``error``, ``configured`` or ``not installed``."""
    where: str = ""
    note: str = ""
    models: list[AvailableModel] = field(default_factory=list)


def _probe_in_process(provider: type[Provider]) -> Probe:
    hint = provider.install_hint
    if provider.requires and importlib.util.find_spec(provider.requires) is None:
        return Probe(provider.name, "not installed", note=hint)
    try:
        models = provider.available()
    except ModelMixError as exc:
        return Probe(provider.name, "error", note=" ".join(str(exc).split())[:160])
    if not models:
        return Probe(provider.name, "not installed", note=f"{hint} (no model found)".strip())
    return Probe(provider.name, "ready", where=f"in-process ({provider.label})", models=models)


def _probe_server(provider: type[Provider]) -> Probe | None:
    try:
        where = provider.configured_base_url()
    except ModelMixError as exc:
        return Probe(provider.name, "error", note=str(exc))
    if where is None:
        return None
    try:
        models = provider.available(timeout=PROBE_TIMEOUT)
    except TransportError as exc:
        return Probe(provider.name, "unreachable", where=where, note=exc.kind.replace("_", " "))
    except ModelMixError as exc:
        return Probe(provider.name, "error", where=where, note=" ".join(str(exc).split())[:160])
    return Probe(provider.name, "reachable", where=where, models=models)


def _probe_cloud(provider: type[Provider]) -> Probe | None:
    for variable in provider.environment():
        if os.environ.get(variable):
            return Probe(provider.name, "configured", note=f"{variable} is set (not called)")
    return None


def _probe(provider: type[Provider]) -> Probe | None:
    if provider.in_process:
        return _probe_in_process(provider)
    if provider.api_key_required:
        return _probe_cloud(provider)
    return _probe_server(provider)


def _providers() -> list[type[Provider]]:
    found: list[type[Provider]] = []
    for prefix in list_providers():
        try:
            cls = provider_class(prefix)
        except ModelMixError:
            continue  # a plugin that fails to import is reported by `modelmix chat`, not here
        if cls is not None:
            found.append(cls)
    return found


def probe_all() -> list[Probe]:
    """Every backend's state: in-process first, then servers, then cloud services."""
    providers = sorted(_providers(), key=lambda p: (not p.in_process, p.api_key_required))
    with ThreadPoolExecutor(max_workers=max(len(providers), 1)) as pool:
        results = list(pool.map(_probe, providers))
    return [probe for probe in results if probe is not None]


def print_models(out: TextIO) -> int:
    for probe in probe_all():
        details = "  ".join(part for part in (probe.where, f"({probe.note})" if probe.note else "") if part)
        out.write(f"{probe.provider:<18} {probe.status:<13} {details}".rstrip() + "\n")
        for model in probe.models:
            size = f"  {model.size_bytes / 1e6:.0f} MB" if model.size_bytes else ""
            out.write(f"{'':<18} {'':<13} {model.spec}{size}\n")
    out.write('\nUse one with: modelmix chat -m MODEL "your question"\n')
    return 0
