"""OpenAI (``openai:<model>``): api.openai.com or any base URL speaking the same API.

Configuration comes from arguments first, then the environment variables the official SDK reads:
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from typing_extensions import Unpack

from .._http import HTTPModel, HTTPModelOptions
from .._profile import FamilyTable
from ._provider import ConnectionOptions, Provider, model_option_names, reject_unknown_options, split_connection_options

__all__ = ["OPENAI_BASE_URL", "OPENAI_FAMILIES", "OpenAIModel", "OpenAIProvider", "create"]

OPENAI_BASE_URL = "https://api.openai.com/v1"

# OpenAI recommends the Responses API for its reasoning models (api="auto" follows this).
_REASONING: dict[str, Any] = {
    "max_tokens_field": "max_completion_tokens",
    "reasoning": "reasoning_effort",
    "preferred_api": "responses",
}

OPENAI_FAMILIES: FamilyTable = (
    # Reasoning models refuse ``max_tokens`` and want ``max_completion_tokens``.
    (r"^gpt-5", {"family": "gpt-5", **_REASONING}),
    (r"^o[134]", {"family": "o-series", **_REASONING}),
    (r"^gpt", {"family": "gpt"}),
)


class OpenAIProvider(Provider):
    """api.openai.com (or a base URL speaking its API) with the official SDK's variables."""

    name = "openai"
    label = "OpenAI"
    default_base_url = OPENAI_BASE_URL
    base_url_env = "OPENAI_BASE_URL"
    api_key_env = "OPENAI_API_KEY"
    api_key_required = True
    missing_key_hint = " (for a local OpenAI-compatible server use 'openai-compatible:<model>')"
    families = OPENAI_FAMILIES
    catalog_limits = True
    # OpenAI answers 409 for transient lock timeouts: worth a retry there (and only there).
    profile_defaults: ClassVar[Mapping[str, Any]] = {"retry_conflict": True}

    def __init__(
        self, *, organization: str | None = None, project: str | None = None, **options: Unpack[ConnectionOptions]
    ) -> None:
        self.organization = organization or os.environ.get("OPENAI_ORG_ID")
        self.project = project or os.environ.get("OPENAI_PROJECT_ID")
        super().__init__(**options)

    def default_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.organization:
            headers["openai-organization"] = self.organization
        if self.project:
            headers["openai-project"] = self.project
        return headers

    @classmethod
    def create_model(cls, name: str, **options: Any) -> OpenAIModel:
        return OpenAIModel(name, **options)


class OpenAIModel(HTTPModel):
    """A model on the OpenAI API.

    ``OpenAIModel("gpt-4o-mini")`` reads ``OPENAI_API_KEY``; pass ``api_key=`` to override.
    """

    def __init__(
        self,
        name: str,
        *,
        organization: str | None = None,
        project: str | None = None,
        **options: Unpack[HTTPModelOptions],
    ) -> None:
        reject_unknown_options("openai", options, model_option_names(), "organization", "project")
        connection, rest = split_connection_options(options)
        super().__init__(
            name, provider=OpenAIProvider(organization=organization, project=project, **connection), **rest
        )


def create(name: str, **options: Any) -> OpenAIModel:
    """Registry factory for ``openai:<name>``."""
    return OpenAIModel(name, **options)
