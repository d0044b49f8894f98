"""Credentials. Keys live in `SecretStr` and leave it only to become a request header."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import SecretStr

from ._exceptions import ConfigurationError

__all__ = ["APIKeyAuth", "Auth", "NoAuth", "key_hint", "resolve_secret"]


def key_hint(secret: SecretStr | None) -> str | None:
    """A safe fingerprint of a key for error messages: ``…abcd`` (the last four characters)."""
    if secret is None:
        return None
    value = secret.get_secret_value()
    return f"…{value[-4:]}" if len(value) >= 12 else "…"


def resolve_secret(value: str | SecretStr | None, *env_names: str) -> SecretStr | None:
    """An explicit value, else the first environment variable that is set and non-empty."""
    if isinstance(value, SecretStr):
        return value if value.get_secret_value() else None
    if value:
        return SecretStr(value)
    for name in env_names:
        found = os.environ.get(name)
        if found:
            return SecretStr(found)
    return None


class Auth:
    """Adds credentials to a request. Subclasses override `headers` / `aheaders`."""

    secret: SecretStr | None = None

    def headers(self) -> Mapping[str, str]:
        return {}

    async def aheaders(self) -> Mapping[str, str]:
        return self.headers()

    @property
    def static(self) -> bool:
        """True when the headers never change, so a driver may compute them once."""
        return True

    def invalidate(self) -> bool:
        """Called after a 401. Return True if a fresh credential may now succeed (token providers)."""
        return False

    def secrets(self) -> list[str]:
        """Every secret value this auth may send, for redaction of error texts."""
        return [self.secret.get_secret_value()] if self.secret is not None else []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(Auth):
    """No credentials (local servers)."""


class APIKeyAuth(Auth):
    """A static key in a header: ``Authorization: Bearer <key>`` or ``api-key: <key>``."""

    def __init__(self, secret: SecretStr, *, header: str = "Authorization", prefix: str = "Bearer ") -> None:
        if not secret.get_secret_value().strip():
            raise ConfigurationError("the API key is empty")
        self.secret = secret
        self._headers = {header: f"{prefix}{secret.get_secret_value()}"}

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def __repr__(self) -> str:
        return f"APIKeyAuth(key={key_hint(self.secret)!r})"
