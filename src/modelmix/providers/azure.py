"""Azure (``azure:<deployment>``): Azure OpenAI deployments and Azure's model catalog, one interface.

Routes (chosen from the endpoint URL, or forced with ``route=``): the OpenAI **v1** route
``https://<resource>.openai.azure.com/openai/v1/`` (also ``…services.ai.azure.com``), the classic
``/openai/deployments/<name>/chat/completions?api-version=…``, the retired Model Inference API
(``*.models.ai.azure.com``, ``…/models``) and old serverless ``*.inference.ai.azure.com/v1``
endpoints. See `_azure_routes` and docs/azure.md.

Configuration, first found wins:

- endpoint: ``endpoint=`` (or ``base_url=``) → ``AZURE_OPENAI_ENDPOINT``
- credential: ``token_provider=`` / ``credential=`` (Entra ID) → ``api_key=`` → ``AZURE_OPENAI_API_KEY``
- classic api-version: ``api_version=`` → ``AZURE_OPENAI_API_VERSION`` → ``2024-10-21``
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from typing_extensions import Unpack

from .._auth import Auth, resolve_secret
from .._catalog_limits import catalog_limits
from .._codec import WireCodec
from .._driver import afetch, fetch
from .._exceptions import ConfigurationError, ProviderError
from .._http import HTTPModel, HTTPModelOptions, split_model_options
from .._profile import ModelProfile, ProfileOverride, build_profile, family_fields
from ._azure_auth import (
    DEFAULT_REFRESH_MARGIN,
    DEFAULT_SCOPE,
    AzureKeyAuth,
    BearerToken,
    EntraTokenAuth,
    TokenProvider,
    default_credential,
    token_provider_from_credential,
)
from ._azure_profiles import AZURE_FAMILIES, CATALOG_DEFAULT, PROFILES, AzureProfile
from ._azure_routes import CLASSIC_API_VERSION, MODEL_INFERENCE_API_VERSION, AzureRoute, RouteName, resolve_route
from ._azure_wire import AzureCodec
from ._openai_wire import OpenAIChatCodec
from ._provider import ConnectionOptions, Provider, reject_unknown_options, split_connection_options

__all__ = [
    "CLASSIC_API_VERSION",
    "DEFAULT_SCOPE",
    "MODEL_INFERENCE_API_VERSION",
    "AzureModel",
    "AzureModelInfo",
    "AzureProfile",
    "AzureProvider",
    "BearerToken",
    "create",
]

logger = logging.getLogger("modelmix.azure")

ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
API_KEY_ENV = "AZURE_OPENAI_API_KEY"
API_VERSION_ENV = "AZURE_OPENAI_API_VERSION"


class AzureModelInfo(BaseModel):
    """What ``GET /info`` says about the model behind a Model Inference API endpoint."""

    model_config = ConfigDict(frozen=True)
    model_name: str | None = None
    model_type: str | None = None
    model_provider_name: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class AzureConnectionOptions(ConnectionOptions, total=False):
    """Where an Azure deployment is and how to authenticate (see the module docstring)."""

    endpoint: str | None
    token_provider: TokenProvider | None
    credential: Any
    scope: str
    route: RouteName | None
    api_version: str | None
    refresh_margin: float
    clock: Callable[[], float]


class AzureModelOptions(AzureConnectionOptions, HTTPModelOptions, total=False):
    """`AzureModel`'s options: the connection's and the model's own."""


class AzureProvider(Provider):
    """One Azure endpoint on one route (chosen from the URL, or forced with ``route=``)."""

    name = "azure"
    label = "Azure"
    base_url_env = ENDPOINT_ENV
    api_key_env = API_KEY_ENV
    api_key_required = True
    listing_path = None
    families = AZURE_FAMILIES
    named_profiles = PROFILES

    def __init__(self, deployment: str, **options: Unpack[AzureConnectionOptions]) -> None:
        endpoint, base_url = options.pop("endpoint", None), options.pop("base_url", None)
        if endpoint and base_url and endpoint != base_url:
            raise ConfigurationError("give the Azure endpoint once: endpoint= or base_url=, not both")
        where = endpoint or base_url or os.environ.get(ENDPOINT_ENV)
        if not where:
            raise ConfigurationError(
                f"Azure needs an endpoint: set the {ENDPOINT_ENV} environment variable or pass "
                "endpoint='https://<resource>.openai.azure.com' (or a catalog endpoint URL)"
            )
        self.deployment = deployment
        self.route: AzureRoute = resolve_route(
            where,
            deployment,
            route=options.pop("route", None),
            api_version=options.pop("api_version", None),
            classic_api_version=os.environ.get(API_VERSION_ENV) or None,
        )
        self._credential_options: dict[str, Any] = {
            "token_provider": options.pop("token_provider", None),
            "credential": options.pop("credential", None),
            "scope": options.pop("scope", DEFAULT_SCOPE),
            "refresh_margin": options.pop("refresh_margin", DEFAULT_REFRESH_MARGIN),
            "clock": options.pop("clock", time.time),
        }
        connection, _ = split_connection_options(options)
        connection["base_url"] = self.route.base_url
        super().__init__(**connection)

    @property
    def catalog(self) -> bool:
        """A catalog route (Model Inference API, serverless ``/v1``) rather than Azure OpenAI."""
        return self.route.name in ("model-inference", "serverless-v1")

    def resolve_auth(self, api_key: str | SecretStr | None) -> Auth:
        return _choose_auth(api_key=api_key, key_style=self.route.key_style, **self._credential_options)

    def default_headers(self) -> dict[str, str]:
        return dict(self.route.headers)

    def query(self) -> Mapping[str, str] | None:
        return self.route.query

    def model_profile(
        self, model_name: str, *, discovered: Mapping[str, Any] | None = None, override: ProfileOverride = None
    ) -> ModelProfile:
        family = family_fields(model_name, AZURE_FAMILIES) or (CATALOG_DEFAULT if self.catalog else {})
        route: dict[str, Any] = {}
        if self.route.name == "v1" and family.get("reasoning") == "reasoning_effort":
            # Microsoft recommends Responses for its reasoning models, served on the v1 route only.
            route["preferred_api"] = "responses"
        layers = [family, route, catalog_limits(model_name), discovered or {}]
        return build_profile(layers, override, named=PROFILES, kind="Azure profile")

    def codec(self, model_name: str) -> AzureCodec:
        return AzureCodec(OpenAIChatCodec(), model_name, self.route, self.host)

    def responses_codec(self, model_name: str) -> WireCodec:
        if self.route.name != "v1":
            # Azure serves the Responses API on its OpenAI v1 route only.
            raise ConfigurationError(
                f"azure:{model_name}: api='responses' needs the OpenAI v1 route "
                f"(https://<resource>.openai.azure.com/openai/v1/), not the {self.route.name} route"
            )
        return AzureCodec(super().responses_codec(model_name), model_name, self.route, self.host)

    def discovery_request(self, model_name: str) -> httpx.Request | None:
        if self.route.info_url is None:
            return None
        return httpx.Request("GET", self.route.info_url)

    def profile_from_discovery(self, data: Any) -> Mapping[str, Any]:
        # /info names the model behind a deployment whose own name may say nothing about it.
        model_name = data.get("model_name") if isinstance(data, Mapping) else None
        return family_fields(str(model_name), AZURE_FAMILIES) if model_name else {}

    @classmethod
    def create_model(cls, name: str, **options: Any) -> AzureModel:
        return AzureModel(name, **options)


class AzureModel(HTTPModel):
    """An Azure OpenAI deployment or an Azure catalog model.

    ``AzureModel("gpt-4o-mini")`` reads ``AZURE_OPENAI_ENDPOINT`` and ``AZURE_OPENAI_API_KEY``.
    For Entra ID pass ``credential=DefaultAzureCredential()`` (or ``credential="default"``) or a
    ``token_provider=`` callable (sync or async) returning a token string, ``(token, expires_on)``
    or an ``AccessToken``.
    """

    backend: AzureProvider

    def __init__(self, deployment: str, **options: Unpack[AzureModelOptions]) -> None:
        if not deployment:
            raise ConfigurationError("an Azure deployment name is required, e.g. 'azure:gpt-4o-mini'")
        reject_unknown_options("azure", options, AzureModelOptions.__annotations__)
        own, connection = split_model_options(options)
        provider = AzureProvider(deployment, **connection)
        super().__init__(deployment, provider=provider, **own)
        self.route = provider.route
        logger.debug(
            "azure:%s → %s route %s (profile %s, auth %r)",
            deployment,
            self.route.name,
            self.route.chat_url,
            self.profile.family,
            self.auth,
        )

    # ----------------------------------------------------------------------------- model info

    def info(self) -> AzureModelInfo:
        """``GET /info`` of a Model Inference API endpoint: the model's name, type and provider."""
        request = self._discovery(self._info_request())
        with self._translate("sent_no_response"):
            response, body = fetch(
                self._sync_client(), request, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._info_result(self._json_document(response, body))

    async def ainfo(self) -> AzureModelInfo:
        """Async `info`."""
        request = self._discovery(self._info_request(), await self._async_auth())
        with self._translate("sent_no_response"):
            response, body = await afetch(
                self._async_client(), request, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._info_result(self._json_document(response, body))

    def _info_result(self, data: Any) -> AzureModelInfo:
        if not isinstance(data, dict):
            raise ProviderError(
                "GET /info answered with a body that is not a JSON object",
                provider=self.provider,
                model=self.name,
                host=self.host,
                code="invalid_json",
            )
        return AzureModelInfo(
            model_name=_opt(data.get("model_name")),
            model_type=_opt(data.get("model_type")),
            model_provider_name=_opt(data.get("model_provider_name")),
            raw=data,
        )

    def _info_request(self) -> httpx.Request:
        request = self.backend.discovery_request(self.name)
        if request is None:
            raise ConfigurationError(
                f"the {self.route.name} route offers no model-info document; GET /info exists only on "
                "Model Inference API endpoints (*.models.ai.azure.com, …/models)"
            )
        return request


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _choose_auth(
    *,
    api_key: str | SecretStr | None,
    token_provider: TokenProvider | None,
    credential: Any,
    scope: str,
    key_style: Any,
    refresh_margin: float,
    clock: Callable[[], float],
) -> Auth:
    if token_provider is not None and credential is not None:
        raise ConfigurationError("give either token_provider= or credential=, not both")
    entra = token_provider is not None or credential is not None
    if entra and api_key:
        raise ConfigurationError("give either an API key or an Entra ID credential/token_provider, not both")
    if credential is not None:
        if credential == "default":
            credential = default_credential()
        token_provider = token_provider_from_credential(credential, scope)
    if token_provider is not None:
        return EntraTokenAuth(token_provider, scope=scope, refresh_margin=refresh_margin, clock=clock)
    secret = resolve_secret(api_key, API_KEY_ENV)
    if secret is None:
        raise ConfigurationError(
            f"Azure needs a credential: set {API_KEY_ENV}, pass api_key=..., or use Entra ID with "
            "credential='default' (pip install 'modelmix[azure]') or token_provider=..."
        )
    return AzureKeyAuth(secret, style=key_style)


def create(name: str, **options: Any) -> AzureModel:
    """Registry factory for ``azure:<deployment>``."""
    return AzureModel(name, **options)
