"""Providers: the backends modelmix reaches, and the contract for adding one.

``Provider`` is the base class of every backend (where it is, its environment variables, auth,
default headers, HTTP clients, ``model_profile(name)``, ``list_models()``, how to build a model);
``ModelProfile`` describes what one model enforces. Register a provider with
`modelmix.register_provider` or the ``modelmix.providers`` entry-point group, and
``mm.model("<prefix>:<model>")``, ``mm.list_models("<prefix>")`` and ``modelmix models`` all use it.
The built-in providers live in the submodules (``openai``, ``azure``, ``ollama``,
``openai_compatible``, ``local``), imported on first use.
"""

from .._codec import RequestContext, WireCodec
from .._profile import ModelProfile
from .._registry import list_providers, register_provider
from ._listing import AvailableModel, alist_models, list_models
from ._provider import ConnectionOptions, Provider

__all__ = [
    "AvailableModel",
    "ConnectionOptions",
    "ModelProfile",
    "Provider",
    "RequestContext",
    "WireCodec",
    "alist_models",
    "list_models",
    "list_providers",
    "register_provider",
]
