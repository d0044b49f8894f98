"""Azure credentials: a key in the ``api-key`` header, or an Entra ID bearer token from a provider.

Tokens are cached and refreshed `refresh_margin` seconds before they expire, so no request goes
out with a token about to lapse; concurrent callers share one refresh. After a 401 the driver calls
`invalidate()` and retries once with a fresh token.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import anyio
import anyio.lowlevel
import anyio.to_thread
from pydantic import SecretStr

from .._auth import Auth, key_hint
from .._exceptions import ConfigurationError, MissingDependencyError, ProviderError
from ._azure_routes import KeyStyle

__all__ = [
    "DEFAULT_SCOPE",
    "AzureKeyAuth",
    "BearerToken",
    "EntraTokenAuth",
    "TokenProvider",
    "default_credential",
    "token_provider_from_credential",
]

logger = logging.getLogger("modelmix.azure")

DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default"
"""The Entra ID scope for Azure OpenAI and Foundry (Cognitive Services) resources."""

DEFAULT_REFRESH_MARGIN = 300.0
"""Refresh five minutes before expiry (as azure-identity does), leaving room for clock skew."""

DEFAULT_TOKEN_TTL = 300.0
"""How long a bare-string token (no expiry given) is reused before the provider is asked again."""


@dataclass(frozen=True)
class BearerToken:
    """A token and when it expires (seconds since the epoch, like azure-identity's ``expires_on``)."""

    token: str
    expires_on: float | None = None

    def __repr__(self) -> str:
        return f"BearerToken(token=<redacted>, expires_on={self.expires_on!r})"


TokenResult = Union[str, BearerToken, tuple[str, float], Any]
"""What a token provider may return: a string, ``(token, expires_on)``, a `BearerToken`, or any
object with ``.token`` and ``.expires_on`` (azure-identity's ``AccessToken``)."""

TokenProvider = Callable[[], Union[TokenResult, Awaitable[TokenResult]]]

_OWN_ERRORS = (ConfigurationError, ProviderError)
"""Errors raised by modelmix itself inside a provider call pass through unchanged."""


def _normalise(result: Any) -> BearerToken:
    if isinstance(result, BearerToken):
        token = result
    elif isinstance(result, str):
        token = BearerToken(result)
    elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str):
        token = BearerToken(result[0], float(result[1]) if result[1] is not None else None)
    elif isinstance(result, Mapping) and isinstance(result.get("token"), str):
        expires = result.get("expires_on")
        token = BearerToken(result["token"], float(expires) if expires is not None else None)
    elif isinstance(getattr(result, "token", None), str):
        expires = getattr(result, "expires_on", None)
        token = BearerToken(result.token, float(expires) if expires is not None else None)
    else:
        raise ConfigurationError(
            f"the token provider returned a {type(result).__name__}; return a bearer token string, "
            "(token, expires_on) or an object with .token and .expires_on"
        )
    if not token.token.strip():
        raise ConfigurationError("the token provider returned an empty token")
    return token


class AzureKeyAuth(Auth):
    """An Azure key: ``api-key: <key>`` on Azure OpenAI routes, ``Authorization: Bearer <key>`` on
    serverless catalog endpoints, both on the Model Inference API (as the Azure SDK sends it)."""

    def __init__(self, secret: SecretStr, *, style: KeyStyle = "api-key") -> None:
        value = secret.get_secret_value()
        if not value.strip():
            raise ConfigurationError("the Azure API key is empty")
        self.secret = secret
        self._headers: dict[str, str] = {}
        if style in ("api-key", "both"):
            self._headers["api-key"] = value
        if style in ("bearer", "both"):
            self._headers["Authorization"] = f"Bearer {value}"

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def __repr__(self) -> str:
        return f"AzureKeyAuth(key={key_hint(self.secret)!r})"


class EntraTokenAuth(Auth):
    """``Authorization: Bearer <token>`` from a sync or async token provider, cached until shortly
    before expiry.

    `clock` returns seconds since the epoch (tests inject a fake one).
    """

    _token_kind = "Entra ID token"
    """What the log lines call the token (subclasses for other token services say theirs)."""

    def __init__(
        self,
        provider: TokenProvider,
        *,
        scope: str = DEFAULT_SCOPE,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not callable(provider):
            raise ConfigurationError("token_provider must be a callable returning a bearer token")
        self.scope = scope
        self._provider = provider
        self._is_async = _is_async_callable(provider)
        self._margin = refresh_margin
        self._ttl = token_ttl
        self._clock = clock
        self._token: BearerToken | None = None
        self._valid_until = 0.0
        self._expires_at = 0.0
        self._issued: list[str] = []  # recent tokens, for redaction of error texts only
        self._thread_lock = threading.Lock()
        self._async_locks: dict[object, anyio.Lock] = {}
        self.refreshes = 0
        """How many times the provider was asked for a token (for tests and diagnostics)."""

    @property
    def static(self) -> bool:
        return False

    # -- sync ------------------------------------------------------------------------------

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._sync_token()}"}

    def _sync_token(self) -> str:
        cached = self._fresh()
        if cached is not None:
            return cached
        if self._is_async:
            raise ConfigurationError(
                "this Azure model has an async token provider, which only works with achat/astream; "
                "for chat/stream pass a sync provider or a sync azure-identity credential"
            )
        with self._thread_lock:
            cached = self._fresh()  # another thread may have refreshed while we waited
            if cached is not None:
                return cached
            return self._store(self._call(self._provider))

    # -- async -----------------------------------------------------------------------------

    async def aheaders(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {await self._async_token()}"}

    async def _async_token(self) -> str:
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._async_lock():
            cached = self._fresh()  # concurrent callers wait here and reuse the one refresh
            if cached is not None:
                return cached
            if self._is_async:
                return self._store(await self._acall())
            # A sync credential may do network I/O: keep it off the event loop.
            return self._store(await anyio.to_thread.run_sync(self._call, self._provider))

    def _async_lock(self) -> anyio.Lock:
        # anyio locks belong to one event loop; a model used from several loops gets one per loop.
        token = anyio.lowlevel.current_token()
        lock = self._async_locks.get(token)
        if lock is None:
            if len(self._async_locks) > 8:
                self._async_locks.clear()
            lock = self._async_locks[token] = anyio.Lock()
        return lock

    # -- shared ----------------------------------------------------------------------------

    def _fresh(self) -> str | None:
        token = self._token
        if token is not None and self._clock() < self._valid_until:
            return token.token
        return None

    def _call(self, provider: TokenProvider) -> Any:
        try:
            return provider()
        except _OWN_ERRORS:
            raise
        except Exception as exc:
            return self._fallback_or_raise(exc)

    async def _acall(self) -> Any:
        try:
            result = self._provider()
            return await result if inspect.isawaitable(result) else result
        except _OWN_ERRORS:
            raise
        except Exception as exc:
            return self._fallback_or_raise(exc)

    def _fallback_or_raise(self, exc: Exception) -> Any:
        # A refresh that fails while the cached token has not yet expired keeps the old token:
        # an Entra hiccup inside the refresh margin should not fail calls that would succeed.
        token = self._token
        if token is not None and self._clock() < self._expires_at:
            logger.warning("Entra ID token refresh failed (%s); reusing the unexpired token", type(exc).__name__)
            return token
        raise ProviderError(
            f"the Entra ID token provider failed ({type(exc).__name__}) for scope {self.scope!r}; "
            "check the credential (az login, managed identity, environment variables)",
            provider="azure",
            retryable=False,
            phase="not_sent",
            code="token_provider_failed",
        ) from exc

    def _store(self, result: Any) -> str:
        token = _normalise(result)
        now = self._clock()
        if token is self._token:
            return token.token
        self.refreshes += 1
        if token.expires_on is None:
            self._expires_at = now + self._ttl
            self._valid_until = self._expires_at
        else:
            self._expires_at = token.expires_on
            # A token shorter-lived than the margin is still used once rather than refreshed forever.
            self._valid_until = max(token.expires_on - self._margin, min(now + 1.0, token.expires_on))
        self._token = token
        self._issued = [*self._issued[-3:], token.token]
        logger.debug(
            "%s refreshed for %s; valid for %.0f s", self._token_kind, self.scope, max(0.0, self._expires_at - now)
        )
        return token.token

    def invalidate(self) -> bool:
        """Drop the cached token so the next request fetches a new one (called after a 401)."""
        self._token = None
        self._valid_until = 0.0
        self._expires_at = 0.0
        return True

    def secrets(self) -> list[str]:
        return list(self._issued)

    def __repr__(self) -> str:
        state = "no token yet" if self._token is None else f"token cached, expires_at={self._expires_at:.0f}"
        return f"EntraTokenAuth(scope={self.scope!r}, {state})"


def _is_async_callable(provider: Any) -> bool:
    if inspect.iscoroutinefunction(provider):
        return True
    call = getattr(provider, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return inspect.iscoroutinefunction(call)


def token_provider_from_credential(credential: Any, scope: str) -> TokenProvider:
    """Adapt an azure-identity credential (sync ``TokenCredential`` or ``AsyncTokenCredential``)."""
    get_token = getattr(credential, "get_token", None)
    if not callable(get_token):
        raise ConfigurationError(
            f"credential must be an azure-identity credential with get_token(), got {type(credential).__name__}"
        )
    if inspect.iscoroutinefunction(get_token):

        async def async_provider() -> Any:
            return await get_token(scope)

        return async_provider

    def provider() -> Any:
        return get_token(scope)

    return provider


def default_credential() -> Any:
    """``azure.identity.DefaultAzureCredential()``, imported only when asked for."""
    try:
        identity = importlib.import_module("azure.identity")
    except ImportError:
        raise MissingDependencyError(
            "Entra ID sign-in with DefaultAzureCredential", "azure", "azure-identity"
        ) from None
    return identity.DefaultAzureCredential()
