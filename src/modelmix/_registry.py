"""The provider table: ``"provider:model"`` strings → models, and prefixes → `Provider` classes.

One table serves `modelmix.model`, `modelmix.list_models` and ``modelmix models``. Built-in
providers are named by module path so importing modelmix stays cheap; third parties register
with `register_provider` or the ``modelmix.providers`` entry-point group. An entry is a
`Provider` subclass (it builds models, lists them and shows up in the CLI) or, as before, a
``create(name, **options) -> Model`` callable (models only).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

from ._exceptions import ConfigurationError
from ._model import Model

if TYPE_CHECKING:
    from .providers._provider import Provider

__all__ = [
    "ProviderEntry",
    "ProviderFactory",
    "list_providers",
    "model",
    "parse_model_string",
    "provider_class",
    "register_provider",
]

ProviderFactory = Callable[..., Model]
"""``factory(name, **options) -> Model``."""

ProviderEntry = Union["type[Provider]", ProviderFactory, str]
"""A `Provider` subclass, a factory, or a ``"module:attribute"`` path to either."""

ENTRY_POINT_GROUP = "modelmix.providers"
DEFAULT_MODEL_ENV = "MODELMIX_MODEL"

_BUILTIN: dict[str, str] = {
    "openai": "modelmix.providers.openai:OpenAIProvider",
    "azure": "modelmix.providers.azure:AzureProvider",
    "ollama": "modelmix.providers.ollama:OllamaProvider",
    "llamacpp": "modelmix.providers.openai_compatible:LlamaCppProvider",
    "vllm": "modelmix.providers.openai_compatible:VLLMProvider",
    "lmstudio": "modelmix.providers.openai_compatible:LMStudioProvider",
    "openai-compatible": "modelmix.providers.openai_compatible:OpenAICompatibleProvider",
    "local": "modelmix.providers.local:LocalProvider",
    "mistral": "modelmix.providers.clouds:MistralProvider",
    "deepseek": "modelmix.providers.clouds:DeepSeekProvider",
    "groq": "modelmix.providers.clouds:GroqProvider",
    "openrouter": "modelmix.providers.clouds:OpenRouterProvider",
    "together": "modelmix.providers.clouds:TogetherProvider",
    "gemini": "modelmix.providers.google:GeminiProvider",
    "vertex": "modelmix.providers.google:VertexProvider",
    "databricks": "modelmix.providers.databricks:DatabricksProvider",
    "bedrock": "modelmix.providers.bedrock:BedrockProvider",
}
_registered: dict[str, ProviderEntry] = dict(_BUILTIN)
_state = {"entry_points_loaded": False}
_lock = threading.Lock()


def register_provider(prefix: str, factory: ProviderEntry, *, replace: bool = False) -> None:
    """Make ``"<prefix>:<model>"`` strings build models with `factory`.

    `factory` is a `Provider` subclass (models, listing and ``modelmix models`` all see it), a
    ``create(name, **options) -> Model`` callable, or a ``"module:attribute"`` path to either,
    imported on first use.
    """
    if not prefix or ":" in prefix or prefix != prefix.strip().lower():
        raise ConfigurationError(f"provider prefix {prefix!r} must be lower-case, non-empty and without ':'")
    with _lock:
        if prefix in _registered and not replace and _registered[prefix] != factory:
            raise ConfigurationError(f"provider {prefix!r} is already registered; pass replace=True to override")
        _registered[prefix] = factory


def list_providers() -> list[str]:
    """The provider prefixes known now (built-in, registered and installed plugins)."""
    _load_entry_points()
    return sorted(_registered)


def _load_entry_points() -> None:
    if _state["entry_points_loaded"]:
        return
    with _lock:
        from importlib.metadata import entry_points  # slow to import; needed only here

        for entry in entry_points(group=ENTRY_POINT_GROUP):
            _registered.setdefault(entry.name, entry.value)
        _state["entry_points_loaded"] = True


def parse_model_string(spec: str) -> tuple[str, str]:
    """Split ``"provider:model"`` on the first colon (model names may contain colons)."""
    provider, sep, name = spec.partition(":")
    provider = provider.strip().lower()
    if not sep:
        if provider == "local":
            return "local", ""
        if provider in _registered or provider in list_providers():
            # The string is a provider's name: what is missing is the model, not the provider.
            raise ConfigurationError(
                f"model string {spec!r} names the provider but no model; write it as "
                f"'{provider}:<model>'{_EXAMPLES.get(provider, '')}"
            )
        raise ConfigurationError(
            f"model string {spec!r} has no provider prefix; write it as 'provider:model', "
            f"e.g. 'openai:{spec}' or 'ollama:{spec}'"
        )
    return provider, name.strip()


_EXAMPLES = {
    "openai": ", e.g. 'openai:gpt-4o-mini'",
    "azure": " with the deployment name, e.g. 'azure:gpt-4o-mini'",
    "ollama": ", e.g. 'ollama:llama3.2'",
    "llamacpp": ", or 'llamacpp:' for the model the server has loaded",
}


def _entry_for(provider: str) -> type[Provider] | ProviderFactory:
    entry = _registered.get(provider)
    if entry is None:
        _load_entry_points()
        entry = _registered.get(provider)
    if entry is None:
        known = sorted(_registered)
        import difflib

        close = difflib.get_close_matches(provider, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(f"unknown provider {provider!r}.{hint} Known providers: {', '.join(known)}")
    if isinstance(entry, str):
        module_name, _, attribute = entry.partition(":")
        loaded: type[Provider] | ProviderFactory = getattr(importlib.import_module(module_name), attribute or "create")
        _registered[provider] = loaded
        return loaded
    return entry


def _is_provider_class(entry: object) -> bool:
    from .providers._provider import Provider

    return isinstance(entry, type) and issubclass(entry, Provider)


def provider_class(prefix: str) -> type[Provider] | None:
    """The `Provider` class registered for `prefix`; None when it was registered as a plain
    factory (such providers build models but can't list them). Unknown prefixes raise."""
    entry = _entry_for(prefix)
    return entry if _is_provider_class(entry) else None  # type: ignore[return-value]


def _factory_for(provider: str) -> ProviderFactory:
    entry = _entry_for(provider)
    if _is_provider_class(entry):
        return entry.create_model  # type: ignore[union-attr]
    return entry  # type: ignore[return-value]


def model(spec: str | None = None, *, max_retries: int = 2, **options: Any) -> Model:
    """Build a model from a ``"provider:model"`` string.

    Options (``api_key=``, ``base_url=``, ``settings=``, ``timeout=``...) go to the provider;
    anything not given is read from the provider's environment variables. With no string, the
    ``MODELMIX_MODEL`` environment variable is used, else the embedded local model.

    The model retries with ``mm.retrying``'s defaults (see the retries guide); ``max_retries=0`` returns the
    bare provider model.
    """
    if spec is None:
        spec = os.environ.get(DEFAULT_MODEL_ENV) or "local"
    if not isinstance(spec, str):
        raise ConfigurationError(f"model() takes a string like 'openai:gpt-4o-mini', not {type(spec).__name__}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"model(max_retries=...) must be a whole number >= 0, got {max_retries!r}")
    provider, name = parse_model_string(spec)
    built = _factory_for(provider)(name, **options)
    if max_retries <= 0:
        return built
    from .resilience import retrying  # late import: resilience builds on the registry

    return retrying(built, max_retries=max_retries)
