"""A bearer token fetched on demand and cached until shortly before it expires, for the clouds
whose credentials are exchanged for short-lived tokens (Google credentials on Vertex AI, OAuth
machine-to-machine on Databricks).

The caching, the one shared refresh under concurrency and the retry after a 401 are those of
Azure's Entra ID tokens; what differs is who is asked and what a failure says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigurationError, ProviderError
from ._azure_auth import BearerToken, EntraTokenAuth, TokenProvider

__all__ = ["BearerToken", "CachedTokenAuth", "TokenProvider"]

logger = logging.getLogger("modelmix.auth")


class CachedTokenAuth(EntraTokenAuth):
    """``Authorization: Bearer <token>`` from `provider`, refreshed before expiry.

    `source` names where tokens come from (for messages); `provider_name` is the registry prefix
    the errors carry; `hint` tells the user what to check when the source fails.
    """

    _token_kind = "access token"

    def __init__(self, provider: TokenProvider, *, source: str, provider_name: str, hint: str, **options: Any) -> None:
        super().__init__(provider, scope=source, **options)
        self._provider_name = provider_name
        self._hint = hint

    def headers(self) -> Mapping[str, str]:
        if self._is_async and self._fresh() is None:
            raise ConfigurationError(
                f"{self._provider_name}: the token provider is async, which only works with achat/astream; "
                "for chat/stream pass a sync one"
            )
        return super().headers()

    def _fallback_or_raise(self, exc: Exception) -> Any:
        # A refresh that fails while the cached token is still valid keeps it, as for Entra ID.
        token = self._token
        if token is not None and self._clock() < self._expires_at:
            logger.warning("%s: token refresh failed (%s); reusing the unexpired token", self.scope, type(exc).__name__)
            return token
        raise ProviderError(
            f"getting a token from {self.scope} failed ({type(exc).__name__}); {self._hint}",
            provider=self._provider_name,
            retryable=False,
            phase="not_sent",
            code="token_provider_failed",
        ) from exc

    def __repr__(self) -> str:
        state = "no token yet" if self._token is None else f"token cached, expires_at={self._expires_at:.0f}"
        return f"CachedTokenAuth({self.scope}, {state})"
