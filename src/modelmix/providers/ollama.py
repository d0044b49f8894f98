"""Ollama on its native API (``ollama:<model>``), e.g. ``mm.model("ollama:llama3.2")``.

The server comes from ``base_url=`` or the ``OLLAMA_HOST`` environment variable, read the way
the Ollama CLI reads it: ``0.0.0.0``, ``myhost``, ``myhost:8080``, ``http://myhost`` and
``https://myhost/prefix`` all work (no scheme → ``http``; no port → 11434, or 80/443 when the
scheme is given). A bind-all address (``0.0.0.0``, ``::``) means "this machine" for a client.
Ollama's OpenAI-style ``/v1`` route is served by ``openai-compatible:`` instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from typing_extensions import Unpack

from .._codec import WireCodec
from .._exceptions import ConfigurationError
from .._http import HTTPModel, HTTPModelOptions
from ._base_url import check_base_url, refuse_credentials
from ._listing import AvailableModel, alist_with, list_with
from ._ollama_wire import OllamaCodec
from ._provider import Provider, model_option_names, reject_unknown_options, split_connection_options

__all__ = [
    "DEFAULT_OLLAMA_PORT",
    "OllamaModel",
    "OllamaProvider",
    "alist_models",
    "create",
    "list_models",
    "ollama_base_url",
]

DEFAULT_OLLAMA_PORT = 11434


def ollama_base_url(host: str | None = None) -> str:
    """The base URL for an ``OLLAMA_HOST``-style value (None reads the environment)."""
    raw = (host if host is not None else os.environ.get("OLLAMA_HOST", "")).strip()
    scheme, sep, rest = raw.partition("://")
    default_port = DEFAULT_OLLAMA_PORT
    if not sep:
        scheme, rest = "http", raw
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport, _, path = rest.partition("/")
    hostname, port = _split_host_port(hostport)
    hostname = _client_address(hostname or "127.0.0.1")
    if ":" in hostname:
        hostname = f"[{hostname}]"
    suffix = f"/{path.strip('/')}" if path.strip("/") else ""
    return f"{scheme}://{hostname}:{port or default_port}{suffix}"


def _split_host_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):  # [::1]:11434
        host, _, tail = hostport[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, int(port) if port.isdigit() else None
    return hostport, None  # bare host, or a bare IPv6 address


def _client_address(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "::1"
    return host


class OllamaProvider(Provider):
    """An Ollama server on its native API (``/api/chat``, ``/api/tags``, ``/api/show``)."""

    name = "ollama"
    label = "Ollama"
    base_url_env = "OLLAMA_HOST"
    api_key_env = "OLLAMA_API_KEY"
    listing_path = "api/tags"
    # Ollama's usage arrives in the final NDJSON object of every stream, unasked; a JSON schema
    # travels in ``format``.
    # /api/chat has no tool_choice: "none" is honoured by sending no tools; other forms are refused.
    profile_defaults: ClassVar[Mapping[str, Any]] = {
        "json_schema_via": "format",
        "tool_choice": frozenset({"auto", "none"}),
    }

    @classmethod
    def resolve_base_url(cls, given: str | None) -> str:
        if given:
            return super().resolve_base_url(given)
        # OLLAMA_HOST has its own forms (``0.0.0.0``, ``:11434``...): only credentials are refused
        # before they are turned into a URL, and the URL is then checked like any other.
        key_option = f"api_key= (or set {cls.api_key_env})"
        refuse_credentials(os.environ.get("OLLAMA_HOST", ""), source="ollama: OLLAMA_HOST", key_option=key_option)
        return str(check_base_url(ollama_base_url(), source="ollama: OLLAMA_HOST", key_option=key_option))

    @classmethod
    def configured_base_url(cls) -> str | None:
        return cls.resolve_base_url(None)

    def codec(self, model_name: str) -> OllamaCodec:
        return OllamaCodec(model_name)

    def responses_codec(self, model_name: str) -> WireCodec:
        # Ollama's base URL is the server root (its native API); Open Responses lives under /v1.
        from ._responses_wire import ResponsesCodec

        return ResponsesCodec("v1/responses", encrypted_reasoning=False)

    def parse_models(self, data: Any) -> list[AvailableModel]:
        return _models_from(data)

    def discovery_request(self, model_name: str) -> httpx.Request | None:
        return httpx.Request("POST", self.base_url.join("api/show"), json={"model": model_name})

    def profile_from_discovery(self, data: Any) -> Mapping[str, Any]:
        """``/api/show`` lists the model's capabilities (``tools``, ``vision``, ``thinking``) and
        its parameters, among them the ``num_ctx`` it is served with."""
        if not isinstance(data, Mapping):
            return {}
        fields: dict[str, Any] = {}
        capabilities = data.get("capabilities")
        if isinstance(capabilities, list):
            fields["tools"] = "tools" in capabilities
            fields["images"] = "vision" in capabilities
            fields["reasoning"] = "think" if "thinking" in capabilities else None
        parameters = data.get("parameters")
        found = re.search(r"^num_ctx\s+(\d+)", parameters, re.MULTILINE) if isinstance(parameters, str) else None
        if found:
            fields["context_window"] = int(found.group(1))
        return fields

    @classmethod
    def create_model(cls, name: str, **options: Any) -> OllamaModel:
        return OllamaModel(name, **options)


class OllamaModel(HTTPModel):
    """A model served by Ollama's native ``/api/chat``.

    `keep_alive` is passed through (how long Ollama keeps the model loaded, e.g. ``"10m"``).
    An API key (``api_key=`` or ``OLLAMA_API_KEY``) is sent as a bearer token, for Ollama behind
    an authenticating proxy or ollama.com.
    """

    def __init__(
        self, name: str, *, keep_alive: str | float | None = None, **options: Unpack[HTTPModelOptions]
    ) -> None:
        reject_unknown_options("ollama", options, model_option_names(), "keep_alive")
        connection, rest = split_connection_options(options)
        codec: OllamaCodec | None = OllamaCodec(name, keep_alive=keep_alive)
        if rest.get("api") == "responses":
            if keep_alive is not None:
                raise ConfigurationError(
                    "ollama: keep_alive= is an option of Ollama's native API; with api='responses' leave it out"
                )
            codec = None  # the provider's Responses codec, at /v1/responses
        super().__init__(name, provider=OllamaProvider(**connection), codec=codec, **rest)

    def list_models(self) -> list[AvailableModel]:
        """The models pulled on this Ollama server (``GET /api/tags``)."""
        return self.backend.list_models()

    async def alist_models(self) -> list[AvailableModel]:
        """Async `list_models`."""
        return await self.backend.alist_models()


def _models_from(data: Any) -> list[AvailableModel]:
    entries = data.get("models") if isinstance(data, Mapping) else None
    models: list[AvailableModel] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("model") or entry.get("name")
        if not name:
            continue
        size = entry.get("size")
        models.append(
            AvailableModel(
                provider="ollama",
                id=str(name),
                size_bytes=size if isinstance(size, int) else None,
                details={k: v for k, v in entry.items() if k not in ("model", "name", "size")},
            )
        )
    return models


def list_models(prefix: str = "ollama", **options: Any) -> list[AvailableModel]:
    """``GET /api/tags`` (used by `modelmix.list_models`)."""
    return list_with(OllamaProvider, **options)


async def alist_models(prefix: str = "ollama", **options: Any) -> list[AvailableModel]:
    """Async `list_models`."""
    return await alist_with(OllamaProvider, **options)


def create(name: str, **options: Any) -> OllamaModel:
    """Registry factory for ``ollama:<model>``."""
    return OllamaModel(name, **options)
