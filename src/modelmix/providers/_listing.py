"""What models a backend offers: `list_models("llamacpp")`, `list_models("ollama")`, ...

Each backend answers from its own listing route (``GET /v1/models`` on OpenAI-compatible
servers, ``GET /api/tags`` on Ollama) or, for ``local``, from the GGUF files it can find. Every
`Provider` lists (``Provider.available``); this module holds the shared type, the dispatch by
registry prefix and the small GET (through the I/O driver) that listing uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from .._codec import ErrorContext, Reply
from .._driver import afetch, fetch, request_timeout, with_timeout
from .._exceptions import ConfigurationError, ProviderError, ResponseTooLargeError, translate_httpx_errors
from ._error_bodies import error_from_body

if TYPE_CHECKING:
    from ._provider import Provider

__all__ = [
    "AvailableModel",
    "aget_json",
    "alist_models",
    "alist_with",
    "get_json",
    "list_models",
    "list_with",
    "listing_request",
]

LIST_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

MAX_LISTING_BYTES = 8 << 20
"""Cap on a listing body (a large Ollama library or vLLM server lists well under 1 MiB)."""


class AvailableModel(BaseModel):
    """One model a backend can serve. ``mm.model(m.spec)`` builds it."""

    model_config = ConfigDict(frozen=True)
    provider: str
    """The registry prefix (``ollama``, ``llamacpp``, ``local`` ...)."""
    id: str
    """The name that goes after the prefix."""
    owned_by: str | None = None
    created: int | None = None
    size_bytes: int | None = None
    details: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Everything else the server said about the model, as sent."""

    @property
    def spec(self) -> str:
        """The model string for `modelmix.model`, e.g. ``"ollama:llama3.2:latest"``."""
        return f"{self.provider}:{self.id}"


def list_models(provider: str = "local", **options: Any) -> list[AvailableModel]:
    """The models a backend offers right now, e.g. ``mm.list_models("llamacpp")``.

    `provider` is a registry prefix, built in or registered (`register_provider`, the
    ``modelmix.providers`` entry-point group). `options` are the provider's connection options
    (``base_url=``, ``api_key=``, ``timeout=``, ``http_client=``); anything not given comes from
    the same environment variables the provider reads. Raises the usual typed errors
    (`TransportError` when nothing listens).
    """
    return _provider_class(provider).available(**options)


async def alist_models(provider: str = "local", **options: Any) -> list[AvailableModel]:
    """Async `list_models`."""
    return await _provider_class(provider).aavailable(**options)


def _provider_class(prefix: str) -> type[Provider]:
    from .._registry import provider_class

    try:
        found = provider_class(prefix.strip().lower().rstrip(":"))
    except ConfigurationError as exc:
        raise ConfigurationError(f"listing models is not supported for {prefix!r}: {exc}") from None
    if found is None:
        raise ConfigurationError(
            f"listing models is not supported for {prefix!r}: it is registered as a plain factory, not a Provider"
        )
    return found


def list_with(provider_class: type[Provider], **options: Any) -> list[AvailableModel]:
    """List with a provider built from `options` for the call (and closed after it)."""
    provider = provider_class(**options)
    try:
        return provider.list_models()
    finally:
        provider.close()


async def alist_with(provider_class: type[Provider], **options: Any) -> list[AvailableModel]:
    """Async `list_with`."""
    provider = provider_class(**options)
    try:
        return await provider.alist_models()
    finally:
        await provider.aclose()


def _too_large(provider: str, host: str) -> Callable[[], ResponseTooLargeError]:
    def build() -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the model listing exceeds the {MAX_LISTING_BYTES}-byte cap; the connection was closed",
            limit=MAX_LISTING_BYTES,
            provider=provider,
            host=host,
            phase="local",
        )

    return build


def listing_request(url: httpx.URL, headers: Mapping[str, str], timeout: httpx.Timeout | float | None) -> httpx.Request:
    """``GET url`` with `timeout` (else the listing default) for every phase."""
    request = httpx.Request("GET", url, headers=dict(headers))
    return with_timeout(request, request_timeout(timeout if timeout is not None else LIST_TIMEOUT, None))


def _decode(response: httpx.Response, body: bytes, provider: str) -> Any:
    if response.status_code >= 300:
        context = ErrorContext(provider=provider, host=response.request.url.host)
        raise error_from_body(body, Reply(response.status_code, response.headers, context=context))
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, huge integers, deep nesting
        raise ProviderError(
            f"the model listing at {response.request.url.path} is not JSON",
            provider=provider,
            status=response.status_code,
            host=response.request.url.host,
        ) from None


def get_json(client: httpx.Client, request: httpx.Request, *, provider: str) -> Any:
    """GET a small JSON document through the driver, with modelmix's error mapping."""
    with translate_httpx_errors(provider=provider, model=None, host=request.url.host):
        reply = fetch(client, request, limit=MAX_LISTING_BYTES, too_large=_too_large(provider, request.url.host))
    return _decode(*reply, provider)


async def aget_json(client: httpx.AsyncClient, request: httpx.Request, *, provider: str) -> Any:
    """Async `get_json`."""
    with translate_httpx_errors(provider=provider, model=None, host=request.url.host):
        reply = await afetch(client, request, limit=MAX_LISTING_BYTES, too_large=_too_large(provider, request.url.host))
    return _decode(*reply, provider)
