"""Google's OpenAI-compatible endpoints: ``gemini:`` (the Gemini API, an API key) and ``vertex:``
(Vertex AI, a Google Cloud project and Google credentials).

``gemini:<model>`` calls ``https://generativelanguage.googleapis.com/v1beta/openai/`` with
``GEMINI_API_KEY`` (``GEMINI_BASE_URL`` moves it). ``vertex:<publisher>/<model>`` (e.g.
``vertex:google/gemini-2.5-flash``) calls
``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/endpoints/openapi``:
the project and location come from ``project=``/``location=`` or ``GOOGLE_CLOUD_PROJECT`` /
``GOOGLE_CLOUD_LOCATION`` (``VERTEX_BASE_URL`` replaces the whole address). Vertex takes OAuth
access tokens, not API keys: by default Application Default Credentials through the optional
``google-auth`` package (``pip install 'modelmix[google]'``), imported only when needed; or pass
``credentials=`` (a google-auth credentials object), ``token_provider=`` (a callable returning a
token) or ``api_key=`` (a ready access token, e.g. from ``gcloud auth print-access-token``).
"""

from __future__ import annotations

import datetime
import importlib
import os
from typing import Any, ClassVar

from typing_extensions import Unpack

from .._auth import Auth
from .._exceptions import ConfigurationError, MissingDependencyError
from .._profile import FamilyTable
from ._cloud_base import CloudProvider
from ._listing import AvailableModel
from ._provider import ConnectionOptions
from ._token_auth import BearerToken, CachedTokenAuth, TokenProvider

__all__ = ["GEMINI_BASE_URL", "GEMINI_FAMILIES", "GeminiProvider", "VertexProvider", "vertex_base_url"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"

GEMINI_FAMILIES: FamilyTable = (
    # Thinking models take OpenAI's reasoning_effort (Google maps it to a thinking budget).
    # Their tool calls carry thought signatures (``extra_content``) that must come back with them.
    (
        r"gemini-(2\.5|[3-9])",
        {"family": "gemini-thinking", "reasoning": "reasoning_effort", "reasoning_echo": ("thought_signature",)},
    ),
    (r"gemini", {"family": "gemini"}),
)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GeminiProvider(CloudProvider):
    """The Gemini API's OpenAI-compatible endpoint (an API key from Google AI Studio)."""

    name = "gemini"
    label = "Gemini API"
    default_base_url = GEMINI_BASE_URL
    base_url_env = "GEMINI_BASE_URL"
    api_key_env = "GEMINI_API_KEY"
    families = GEMINI_FAMILIES

    def parse_models(self, data: Any) -> list[AvailableModel]:
        # Google names models "models/gemini-2.5-flash"; the chat endpoint takes the bare name too.
        return [
            model.model_copy(update={"id": model.id.removeprefix("models/")}) for model in super().parse_models(data)
        ]


def vertex_base_url(project: str, location: str) -> str:
    """The OpenAI-compatible address of Vertex AI for one project and location."""
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/v1/projects/{project}/locations/{location}/endpoints/openapi"


class VertexProvider(CloudProvider):
    """Vertex AI's OpenAI-compatible endpoint (Gemini and Model Garden models).

    The address comes from ``base_url=``, ``VERTEX_BASE_URL``, or `project` and `location`
    (default ``us-central1``); the credential from ``auth=``, ``api_key=`` (an access token),
    `token_provider`, `credentials`, or else Application Default Credentials via google-auth.
    """

    name = "vertex"
    label = "Vertex AI"
    base_url_env = "VERTEX_BASE_URL"
    api_key_env = None
    listing_path = None  # the OpenAI-compatible endpoint has no model listing
    families = GEMINI_FAMILIES
    provider_options = ("project", "location", "credentials", "token_provider")
    default_location: ClassVar[str] = "us-central1"

    def __init__(
        self,
        *,
        project: str | None = None,
        location: str | None = None,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        **options: Unpack[ConnectionOptions],
    ) -> None:
        self.location = location or os.environ.get("GOOGLE_CLOUD_LOCATION") or self.default_location
        self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        self._credentials = credentials
        self._token_provider = token_provider
        if options.get("base_url") is None and not os.environ.get("VERTEX_BASE_URL"):
            given = (credentials, token_provider, options.get("api_key"), options.get("auth"))
            if not self.project and all(item is None for item in given):
                # Application Default Credentials know their project: ask them once, keep both.
                self._credentials, self.project = _default_credentials()
            if not self.project:
                raise ConfigurationError(
                    "vertex: no Google Cloud project; pass project='my-project' or set GOOGLE_CLOUD_PROJECT "
                    "(or give the whole address as base_url=/VERTEX_BASE_URL)"
                )
            options["base_url"] = vertex_base_url(self.project, self.location)
        super().__init__(**options)

    @classmethod
    def environment(cls) -> tuple[str, ...]:
        return (*super().environment(), "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")

    @classmethod
    def configured_base_url(cls) -> str | None:
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if os.environ.get("VERTEX_BASE_URL") or not project:
            return super().configured_base_url()
        return vertex_base_url(project, os.environ.get("GOOGLE_CLOUD_LOCATION") or cls.default_location)

    def resolve_auth(self, api_key: Any) -> Auth:
        if api_key is not None:
            return super().resolve_auth(api_key)  # a ready access token, sent as a bearer
        provider = self._token_provider
        if provider is None:
            credentials = self._credentials
            if credentials is None:
                credentials, _ = _default_credentials()
            provider = google_token_provider(credentials)
        return CachedTokenAuth(
            provider,
            source="Google credentials",
            provider_name=self.name,
            hint="check them (gcloud auth application-default login, GOOGLE_APPLICATION_CREDENTIALS)",
        )


def _google_auth(feature: str) -> Any:
    try:
        return importlib.import_module("google.auth")
    except ImportError:
        raise MissingDependencyError(feature, "google", "google-auth") from None


def _default_credentials() -> tuple[Any, str | None]:
    """Application Default Credentials and the project they name (None when they name none)."""
    google_auth = _google_auth("Vertex AI with Application Default Credentials")
    found, project = google_auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return found, (str(project) if project else None)


def google_token_provider(credentials: Any) -> TokenProvider:
    """Tokens from a google-auth credentials object, refreshed by google-auth when they lapse."""
    if not hasattr(credentials, "token"):
        raise ConfigurationError(
            f"vertex: credentials= takes a google-auth credentials object, not {type(credentials).__name__}"
        )

    def provider() -> BearerToken:
        if not getattr(credentials, "valid", False) or not credentials.token:
            requests_transport = importlib.import_module("google.auth.transport.requests")
            credentials.refresh(requests_transport.Request())
        return BearerToken(credentials.token, _epoch(getattr(credentials, "expiry", None)))

    return provider


def _epoch(expiry: Any) -> float | None:
    """google-auth's ``expiry`` (a naive UTC datetime) as seconds since the epoch."""
    if not isinstance(expiry, datetime.datetime):
        return None
    aware = expiry if expiry.tzinfo is not None else expiry.replace(tzinfo=datetime.timezone.utc)
    return aware.timestamp()
