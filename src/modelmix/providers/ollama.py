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
from collections.abc import Mapping
from typing import Any

import httpx

from .._auth import APIKeyAuth, Auth, NoAuth, resolve_secret
from .._http import HTTPModel
from .._settings import Settings
from ._listing import AvailableModel, aget_json, get_json
from ._ollama_wire import OllamaCodec

__all__ = ["DEFAULT_OLLAMA_PORT", "OllamaModel", "alist_models", "create", "list_models", "ollama_base_url"]

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


class OllamaModel(HTTPModel):
    """A model served by Ollama's native ``/api/chat``.

    `keep_alive` is passed through (how long Ollama keeps the model loaded, e.g. ``"10m"``).
    An API key (``api_key=`` or ``OLLAMA_API_KEY``) is sent as a bearer token, for Ollama behind
    an authenticating proxy or ollama.com.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        context_window: int | None = None,
        keep_alive: str | float | None = None,
    ) -> None:
        super().__init__(
            name,
            provider="ollama",
            base_url=base_url or ollama_base_url(),
            codec=OllamaCodec(name, keep_alive=keep_alive),
            auth=_auth(api_key),
            settings=settings,
            default_headers=default_headers,
            timeout=timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            context_window=context_window,
        )

    def list_models(self) -> list[AvailableModel]:
        """The models pulled on this Ollama server (``GET /api/tags``)."""
        return _models_from(get_json(self.base_url.join("api/tags"), provider="ollama", headers=self.auth.headers()))

    async def alist_models(self) -> list[AvailableModel]:
        data = await aget_json(self.base_url.join("api/tags"), provider="ollama", headers=self.auth.headers())
        return _models_from(data)


def _auth(api_key: str | None) -> Auth:
    secret = resolve_secret(api_key, "OLLAMA_API_KEY")
    return APIKeyAuth(secret) if secret is not None else NoAuth()


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


def _tags_url(options: Mapping[str, Any]) -> httpx.URL:
    return httpx.URL(str(options.get("base_url") or ollama_base_url()).rstrip("/") + "/api/tags")


def list_models(prefix: str = "ollama", **options: Any) -> list[AvailableModel]:
    """``GET /api/tags`` (used by `modelmix.list_models`)."""
    data = get_json(
        _tags_url(options),
        provider="ollama",
        headers=_auth(options.get("api_key")).headers(),
        timeout=options.get("timeout"),
        client=options.get("http_client"),
    )
    return _models_from(data)


async def alist_models(prefix: str = "ollama", **options: Any) -> list[AvailableModel]:
    data = await aget_json(
        _tags_url(options),
        provider="ollama",
        headers=_auth(options.get("api_key")).headers(),
        timeout=options.get("timeout"),
        client=options.get("async_http_client"),
    )
    return _models_from(data)


def create(name: str, **options: Any) -> OllamaModel:
    """Registry factory for ``ollama:<model>``."""
    return OllamaModel(name, **options)
