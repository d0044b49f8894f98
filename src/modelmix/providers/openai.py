"""OpenAI (``openai:<model>``): api.openai.com or any base URL speaking the same API.

Configuration comes from arguments first, then the environment variables the official SDK reads:
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from .._auth import APIKeyAuth, resolve_secret
from .._exceptions import ConfigurationError
from .._http import HTTPModel
from .._settings import Settings
from ._openai_wire import OpenAIChatCodec, WireQuirks

__all__ = ["OPENAI_BASE_URL", "OpenAIModel", "create"]

OPENAI_BASE_URL = "https://api.openai.com/v1"

# Reasoning models refuse ``max_tokens`` and want ``max_completion_tokens``.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIModel(HTTPModel):
    """A model on the OpenAI API.

    ``OpenAIModel("gpt-4o-mini")`` reads ``OPENAI_API_KEY``; pass ``api_key=`` to override.
    """

    def __init__(
        self,
        name: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        settings: Settings | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        context_window: int | None = None,
    ) -> None:
        secret = resolve_secret(api_key, "OPENAI_API_KEY")
        if secret is None:
            raise ConfigurationError(
                "OpenAI needs an API key: set the OPENAI_API_KEY environment variable or pass "
                "api_key=... (for a local OpenAI-compatible server use 'openai-compatible:<model>')"
            )
        headers: dict[str, str] = {}
        organization = organization or os.environ.get("OPENAI_ORG_ID")
        project = project or os.environ.get("OPENAI_PROJECT_ID")
        if organization:
            headers["openai-organization"] = organization
        if project:
            headers["openai-project"] = project
        headers.update(default_headers or {})
        quirks = WireQuirks(
            max_tokens_field="max_completion_tokens" if name.startswith(_REASONING_PREFIXES) else "max_tokens",
            retry_conflict=True,
        )
        super().__init__(
            name,
            provider="openai",
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL,
            codec=OpenAIChatCodec(quirks),
            auth=APIKeyAuth(secret),
            settings=settings,
            default_headers=headers,
            timeout=timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            context_window=context_window,
        )


def create(name: str, **options: Any) -> OpenAIModel:
    """Registry factory for ``openai:<name>``."""
    return OpenAIModel(name, **options)
