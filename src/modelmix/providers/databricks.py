"""Databricks model serving (``databricks:<endpoint>``): the serving endpoint's name is the model.

Chat goes to ``https://<workspace>/serving-endpoints/chat/completions`` on Azure Databricks, AWS
and GCP alike. The workspace comes from ``base_url=`` or ``DATABRICKS_HOST`` (``https://`` is
assumed, ``/serving-endpoints`` added when no path is given). Credentials, first found wins:

- ``api_key=``: a personal access token (or any bearer token);
- ``client_id=`` and ``client_secret=``: an OAuth machine-to-machine service principal, whose
  tokens modelmix gets from ``https://<workspace>/oidc/v1/token`` and caches until shortly before
  they expire (refreshed, and fetched again after a 401);
- ``DATABRICKS_TOKEN``, then ``DATABRICKS_CLIENT_ID`` and ``DATABRICKS_CLIENT_SECRET``.

``mm.list_models("databricks")`` lists the workspace's serving endpoints
(``GET /api/2.0/serving-endpoints``).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr
from typing_extensions import Unpack

from .._auth import Auth, resolve_secret
from .._codec import ErrorContext, Reply
from .._driver import fetch, request_timeout, with_timeout
from .._exceptions import ConfigurationError, ProviderError, ResponseTooLargeError, translate_httpx_errors
from ._cloud_base import CloudProvider
from ._error_bodies import error_from_body
from ._listing import AvailableModel
from ._provider import ConnectionOptions
from ._token_auth import BearerToken, CachedTokenAuth

__all__ = ["DatabricksProvider", "oauth_token_provider"]

TOKEN_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
_MAX_TOKEN_BODY = 64 * 1024


class DatabricksProvider(CloudProvider):
    """A Databricks workspace's model serving endpoints (personal access token or OAuth M2M)."""

    name = "databricks"
    label = "Databricks"
    base_url_env = "DATABRICKS_HOST"
    api_key_env = "DATABRICKS_TOKEN"
    api_root = "/serving-endpoints"
    listing_path = "/api/2.0/serving-endpoints"
    missing_key_hint = " (a personal access token), or client_id= and client_secret= (DATABRICKS_CLIENT_ID/_SECRET)"
    provider_options = ("client_id", "client_secret")
    # Reasoning models there (Claude with thinking) answer with content parts: reasoning, then text.
    content_parts_answers = True

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self._client_id = client_id
        self._client_secret = resolve_secret(client_secret)
        self._token_timeout = options.get("timeout")  # resolve_auth runs before the base sets .timeout
        super().__init__(**options)

    @classmethod
    def environment(cls) -> tuple[str, ...]:
        return (*super().environment(), "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET")

    @classmethod
    def resolve_base_url(cls, given: str | None) -> str:
        # A workspace is always https; DATABRICKS_HOST is often written as the bare host name.
        url = given or os.environ.get("DATABRICKS_HOST")
        if isinstance(url, str) and url.strip() and "://" not in url:
            given = f"https://{url.strip()}"
        return super().resolve_base_url(given)

    def resolve_auth(self, api_key: str | SecretStr | None) -> Auth:
        explicit = resolve_secret(api_key)
        if explicit is not None:
            return super().resolve_auth(explicit)
        if self._client_id or self._client_secret:
            return self._oauth(self._client_id, self._client_secret)
        if os.environ.get("DATABRICKS_TOKEN"):
            return super().resolve_auth(None)
        client_id = os.environ.get("DATABRICKS_CLIENT_ID")
        if client_id or os.environ.get("DATABRICKS_CLIENT_SECRET"):
            return self._oauth(client_id, resolve_secret(None, "DATABRICKS_CLIENT_SECRET"))
        return super().resolve_auth(None)  # refuses: nothing to authenticate with

    def _oauth(self, client_id: str | None, client_secret: SecretStr | None) -> Auth:
        if not client_id or client_secret is None:
            missing = (
                "client_id= (DATABRICKS_CLIENT_ID)" if not client_id else "client_secret= (DATABRICKS_CLIENT_SECRET)"
            )
            raise ConfigurationError(f"databricks: OAuth machine-to-machine needs {missing} as well")
        token_url = self.base_url.copy_with(path="/oidc/v1/token", query=None)
        auth = CachedTokenAuth(
            oauth_token_provider(token_url, client_id, client_secret, self.sync_client, self._token_timeout),
            source=f"Databricks OAuth ({token_url.host})",
            provider_name=self.name,
            hint="check the service principal's client id and secret",
        )
        auth.secret = client_secret  # so errors redact it, should a server ever echo it
        return auth

    def parse_models(self, data: Any) -> list[AvailableModel]:
        """``{"endpoints": [{"name", "task", "state", ...}]}`` → one model per serving endpoint."""
        entries = data.get("endpoints") if isinstance(data, dict) else None
        models: list[AvailableModel] = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
                created = entry.get("creation_timestamp")
                creator = entry.get("creator")
                models.append(
                    AvailableModel(
                        provider=self.name,
                        id=entry["name"],
                        owned_by=creator if isinstance(creator, str) else None,
                        created=created // 1000 if isinstance(created, int) else None,  # sent in ms
                        details={k: v for k, v in entry.items() if k not in ("name", "creator", "creation_timestamp")},
                    )
                )
        return models


def oauth_token_provider(
    token_url: httpx.URL,
    client_id: str,
    client_secret: SecretStr,
    client: Callable[[], httpx.Client],
    timeout: httpx.Timeout | float | None = None,
) -> Callable[[], BearerToken]:
    """A token provider for OAuth client credentials at `token_url` (Databricks ``/oidc/v1/token``)."""

    def provider() -> BearerToken:
        secret = client_secret.get_secret_value()
        request = httpx.Request(
            "POST",
            token_url,
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            headers={"accept": "application/json", "authorization": "Basic " + _basic(client_id, secret)},
        )
        request = with_timeout(request, request_timeout(timeout if timeout is not None else TOKEN_TIMEOUT, None))
        host = token_url.host
        started = time.time()
        with translate_httpx_errors(provider="databricks", model=None, host=host, secrets=(secret,)):
            response, body = fetch(client(), request, limit=_MAX_TOKEN_BODY, too_large=_too_large(host))
        context = ErrorContext(provider="databricks", host=host, secrets=(secret,))
        if response.status_code >= 300:
            reply = Reply(response.status_code, response.headers, context=context)
            raise error_from_body(_oauth_error_body(body), reply)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError(
                "the Databricks OAuth token endpoint answered without an access_token",
                provider="databricks",
                host=host,
                status=response.status_code,
                retryable=False,
                phase="not_sent",
            )
        expires_in = data.get("expires_in") if isinstance(data, dict) else None
        expires = started + float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
        return BearerToken(token, expires)

    return provider


def _oauth_error_body(body: bytes) -> bytes:
    """OAuth's ``{"error": "invalid_client", "error_description": "..."}`` in the shape the error
    classifier reads, so the message says why and the code is the OAuth error."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return body
    description = data.get("error_description")
    message = f"{data['error']}: {description}" if isinstance(description, str) and description else data["error"]
    return json.dumps({"error": {"message": message, "code": data["error"]}}).encode()


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _too_large(host: str) -> Callable[[], ResponseTooLargeError]:
    def build() -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the OAuth token answer exceeds {_MAX_TOKEN_BODY} bytes",
            limit=_MAX_TOKEN_BODY,
            provider="databricks",
            host=host,
            phase="local",
        )

    return build
