"""OpenAI-compatible servers: ``llamacpp:``, ``vllm:``, ``lmstudio:`` and ``openai-compatible:``.

They all speak OpenAI's chat completions; what differs is where they are and what their models
enforce, which their `Provider` states:

=====================  ===========================  =========================  ===========================
prefix                 default base URL             base URL variable          API key variable
=====================  ===========================  =========================  ===========================
``llamacpp:``          ``http://127.0.0.1:8080/v1``  ``LLAMACPP_BASE_URL``      ``LLAMACPP_API_KEY``
``vllm:``              ``http://127.0.0.1:8000/v1``  ``VLLM_BASE_URL``          ``VLLM_API_KEY``
``lmstudio:``          ``http://127.0.0.1:1234/v1``  ``LMSTUDIO_BASE_URL``      ``LMSTUDIO_API_KEY``
``openai-compatible:`` (required)                   ``OPENAI_COMPATIBLE_BASE_URL``  ``OPENAI_COMPATIBLE_API_KEY``
=====================  ===========================  =========================  ===========================

Their profiles switch on the repairs: usage missing from streams is estimated offline
(``Usage.estimated``); ``<tool_call>`` text becomes tool calls when tools were offered. The shared
error classifier turns an HTTP 200 whose body is an error (LM Studio) into the error it
describes, llama.cpp's ``exceed_context_size_error`` into `ContextLengthExceededError` and a 503
"Loading model" into a retryable `ServerError` with a hint. ``llamacpp:`` models can also
`discover_profile()` from the server's ``GET /props`` (context size, vision).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from typing_extensions import Unpack

from .._exceptions import ConfigurationError
from .._http import HTTPModel, HTTPModelOptions
from .._profile import FamilyTable
from ._listing import AvailableModel, alist_with, list_with
from ._provider import Provider, model_option_names, reject_unknown_options, split_connection_options

__all__ = [
    "PRESETS",
    "LMStudioProvider",
    "LlamaCppProvider",
    "OpenAICompatibleModel",
    "OpenAICompatibleProvider",
    "VLLMProvider",
    "alist_models",
    "create",
    "list_models",
]


class OpenAICompatibleProvider(Provider):
    """Any server speaking OpenAI's chat completions, at a base URL you give."""

    name = "openai-compatible"
    label = "OpenAI-compatible server"
    base_url_env = "OPENAI_COMPATIBLE_BASE_URL"
    api_key_env = "OPENAI_COMPATIBLE_API_KEY"
    # Text parts go as one string: every server takes a string, and some (llama-cpp-python,
    # older LM Studio) fail on a list. Lists holding images are still sent as parts.
    profile_defaults: ClassVar[Mapping[str, Any]] = {
        "text_tool_calls": True,
        "estimate_usage": True,
        "content_parts": False,
    }

    @classmethod
    def create_model(cls, name: str, **options: Any) -> OpenAICompatibleModel:
        return OpenAICompatibleModel(name, preset=cls, **options)


THINKING_TEMPLATE_FAMILIES: FamilyTable = (
    # Qwen3's chat template takes ``enable_thinking``, which vLLM and llama.cpp pass through.
    (r"qwen3", {"family": "qwen3", "reasoning": "chat_template"}),
)
VLLM_FAMILIES: FamilyTable = (
    # vLLM maps reasoning_effort onto gpt-oss's own reasoning levels.
    (r"gpt-oss", {"family": "gpt-oss", "reasoning": "reasoning_effort"}),
    *THINKING_TEMPLATE_FAMILIES,
)


class LlamaCppProvider(OpenAICompatibleProvider):
    """llama.cpp's ``llama-server``."""

    name = "llamacpp"
    label = "llama.cpp server"
    default_base_url = "http://127.0.0.1:8080/v1"
    base_url_env = "LLAMACPP_BASE_URL"
    api_key_env = "LLAMACPP_API_KEY"
    api_root = "/v1"
    families = THINKING_TEMPLATE_FAMILIES
    # llama-cpp-python's server rejects ``type: json_schema`` with a 500; both it and llama.cpp's
    # own server enforce a schema given as ``{"type": "json_object", "schema": ...}``.
    profile_defaults: ClassVar[Mapping[str, Any]] = {
        **OpenAICompatibleProvider.profile_defaults,
        "json_schema_via": "json_object_schema",
    }

    @classmethod
    def create_model(cls, name: str, **options: Any) -> OpenAICompatibleModel:
        # A llama.cpp server serves the one model it loaded, whatever the name.
        return OpenAICompatibleModel(name or "default", preset=cls, **options)

    def discovery_request(self, model_name: str) -> httpx.Request | None:
        return httpx.Request("GET", self.base_url.copy_with(path="/props"))

    def profile_from_discovery(self, data: Any) -> Mapping[str, Any]:
        """``GET /props``: the context size the server was started with, and whether it sees images."""
        if not isinstance(data, Mapping):
            return {}
        fields: dict[str, Any] = {}
        settings = data.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
        if isinstance(n_ctx, int) and n_ctx > 0:
            fields["context_window"] = n_ctx
        modalities = data.get("modalities")
        if isinstance(modalities, Mapping) and isinstance(modalities.get("vision"), bool):
            fields["images"] = modalities["vision"]
        return fields


class VLLMProvider(OpenAICompatibleProvider):
    """vLLM's OpenAI-compatible server."""

    name = "vllm"
    label = "vLLM"
    default_base_url = "http://127.0.0.1:8000/v1"
    base_url_env = "VLLM_BASE_URL"
    api_key_env = "VLLM_API_KEY"
    api_root = "/v1"
    families = VLLM_FAMILIES


class LMStudioProvider(OpenAICompatibleProvider):
    """LM Studio's local server."""

    name = "lmstudio"
    label = "LM Studio"
    default_base_url = "http://127.0.0.1:1234/v1"
    base_url_env = "LMSTUDIO_BASE_URL"
    api_key_env = "LMSTUDIO_API_KEY"
    api_root = "/v1"


PRESETS: dict[str, type[OpenAICompatibleProvider]] = {
    cls.name: cls for cls in (LlamaCppProvider, VLLMProvider, LMStudioProvider, OpenAICompatibleProvider)
}
"""The OpenAI-compatible providers by prefix."""


class OpenAICompatibleModel(HTTPModel):
    """A model on an OpenAI-compatible server.

    ``OpenAICompatibleModel("qwen2.5", base_url="http://localhost:11434/v1")`` talks to Ollama's
    ``/v1`` route; ``OpenAICompatibleModel("any", preset="llamacpp")`` to a llama.cpp server on
    port 8080. `text_tool_calls`, `estimate_usage` and `stream_usage` override the profile fields
    of the same names.
    """

    def __init__(
        self,
        name: str,
        *,
        preset: str | type[OpenAICompatibleProvider] = "openai-compatible",
        text_tool_calls: bool | None = None,
        estimate_usage: bool | None = None,
        stream_usage: bool | None = None,
        **options: Unpack[HTTPModelOptions],
    ) -> None:
        provider_class = PRESETS.get(preset) if isinstance(preset, str) else preset
        if provider_class is None:
            raise ConfigurationError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        reject_unknown_options(
            provider_class.name, options, model_option_names(), "text_tool_calls", "estimate_usage", "stream_usage"
        )
        flags = {"text_tool_calls": text_tool_calls, "estimate_usage": estimate_usage, "stream_usage": stream_usage}
        overrides = {key: value for key, value in flags.items() if value is not None}
        profile = options.pop("profile", None)
        if overrides and (profile is None or isinstance(profile, Mapping)):
            profile = {**(profile or {}), **overrides}
        elif overrides:
            raise ConfigurationError("give profile fields either as profile=... or as flags, not both")
        connection, rest = split_connection_options(options)
        super().__init__(name, provider=provider_class(**connection), profile=profile, **rest)

    def list_models(self) -> list[AvailableModel]:
        """``GET /v1/models`` on this model's server."""
        return self.backend.list_models()

    async def alist_models(self) -> list[AvailableModel]:
        """Async `list_models`."""
        return await self.backend.alist_models()


def list_models(prefix: str, **options: Any) -> list[AvailableModel]:
    """``GET {base}/models`` for one prefix (used by `modelmix.list_models`)."""
    return list_with(PRESETS[prefix], **options)


async def alist_models(prefix: str, **options: Any) -> list[AvailableModel]:
    """Async `list_models`."""
    return await alist_with(PRESETS[prefix], **options)


def _factory(provider: type[OpenAICompatibleProvider]) -> Any:
    def create(name: str, **options: Any) -> OpenAICompatibleModel:
        return provider.create_model(name, **options)

    create.__name__ = f"create_{provider.name.replace('-', '_')}"
    create.__doc__ = f"Registry factory for ``{provider.name}:<model>``."
    return create


create = _factory(OpenAICompatibleProvider)
create_llamacpp = _factory(LlamaCppProvider)
create_vllm = _factory(VLLMProvider)
create_lmstudio = _factory(LMStudioProvider)
