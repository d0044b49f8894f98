"""Hosted OpenAI-compatible APIs as presets: ``mistral:``, ``deepseek:``, ``groq:``,
``openrouter:`` and ``together:``.

Each is a `Provider` with its address, its environment variables and what its models enforce;
the wire format is OpenAI's chat completions, so responses, streams and errors are the same types
as everywhere else. Their quirks live in the profile and in the small overrides below:

============== ================================ ====================== =========================
prefix         default base URL                 API key variable       base URL variable
============== ================================ ====================== =========================
``mistral:``   ``https://api.mistral.ai/v1``    ``MISTRAL_API_KEY``    ``MISTRAL_BASE_URL``
``deepseek:``  ``https://api.deepseek.com``     ``DEEPSEEK_API_KEY``   ``DEEPSEEK_BASE_URL``
``groq:``      ``https://api.groq.com/openai/v1`` ``GROQ_API_KEY``     ``GROQ_BASE_URL``
``openrouter:`` ``https://openrouter.ai/api/v1`` ``OPENROUTER_API_KEY`` ``OPENROUTER_BASE_URL``
``together:``  ``https://api.together.xyz/v1``  ``TOGETHER_API_KEY``   ``TOGETHER_BASE_URL``
============== ================================ ====================== =========================
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from typing_extensions import Unpack

from .._profile import FamilyTable
from ._cloud_base import CloudProvider
from ._provider import ConnectionOptions

__all__ = [
    "DEEPSEEK_FAMILIES",
    "GROQ_FAMILIES",
    "DeepSeekProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenRouterProvider",
    "TogetherProvider",
]


class MistralProvider(CloudProvider):
    """Mistral's La Plateforme (``api.mistral.ai``)."""

    name = "mistral"
    label = "Mistral"
    default_base_url = "https://api.mistral.ai/v1"
    base_url_env = "MISTRAL_BASE_URL"
    api_key_env = "MISTRAL_API_KEY"
    # Mistral validates request bodies strictly: ``stream_options`` is answered with a 422
    # (extra_forbidden), while its streams carry usage in the last chunk unasked.
    profile_defaults: ClassVar[Mapping[str, Any]] = {"stream_usage": False}
    # Magistral answers with content parts: ``thinking`` (its reasoning), then ``text``.
    content_parts_answers = True


DEEPSEEK_FAMILIES: FamilyTable = (
    # The reasoning model returns its thinking as ``reasoning_content`` and takes no effort control.
    (r"reasoner|-r1", {"family": "deepseek-reasoner"}),
    (r"", {"family": "deepseek-chat"}),
)


class DeepSeekProvider(CloudProvider):
    """DeepSeek's API (``api.deepseek.com``)."""

    name = "deepseek"
    label = "DeepSeek"
    default_base_url = "https://api.deepseek.com"
    base_url_env = "DEEPSEEK_BASE_URL"
    api_key_env = "DEEPSEEK_API_KEY"
    families = DEEPSEEK_FAMILIES
    # JSON output is ``json_object`` only: a JSON schema is refused before sending rather than
    # answered with a 400 (ask for JSON with response_format="json" and describe the shape).
    # In thinking mode a turn that called tools must bring its ``reasoning_content`` back.
    profile_defaults: ClassVar[Mapping[str, Any]] = {"json_schema": False, "reasoning_echo": ("reasoning_content",)}
    encrypted_reasoning = False


GROQ_FAMILIES: FamilyTable = (
    # OpenAI's open-weight models there return ``message.reasoning`` and take reasoning_effort.
    (r"gpt-oss", {"family": "gpt-oss", "reasoning": "reasoning_effort"}),
)


class GroqProvider(CloudProvider):
    """GroqCloud (``api.groq.com/openai/v1``)."""

    name = "groq"
    label = "Groq"
    default_base_url = "https://api.groq.com/openai/v1"
    base_url_env = "GROQ_BASE_URL"
    api_key_env = "GROQ_API_KEY"
    families = GROQ_FAMILIES

    def error_details(self, error: Mapping[str, Any]) -> str | None:
        # A 400 ``tool_use_failed`` carries what the model wrote instead of a valid call.
        failed = error.get("failed_generation")
        return f"the model wrote: {failed}" if isinstance(failed, str) and failed else None


class OpenRouterProvider(CloudProvider):
    """OpenRouter (``openrouter.ai/api/v1``): many vendors' models behind one key.

    `site_url` and `app_name` are OpenRouter's optional attribution headers (``HTTP-Referer``,
    ``X-Title``); they default to ``OPENROUTER_SITE_URL`` and ``OPENROUTER_APP_NAME``.
    """

    name = "openrouter"
    label = "OpenRouter"
    default_base_url = "https://openrouter.ai/api/v1"
    base_url_env = "OPENROUTER_BASE_URL"
    api_key_env = "OPENROUTER_API_KEY"
    provider_options = ("site_url", "app_name")
    reports_cost = True  # ``usage.cost``: what the call was charged, in USD (OpenRouter credits)
    # One `reasoning` object for every vendor behind it (models that don't reason ignore it);
    # ``reasoning_details`` (signed or encrypted reasoning) go back with a turn that called tools.
    profile_defaults: ClassVar[Mapping[str, Any]] = {
        "reasoning": "reasoning_object",
        "reasoning_echo": ("reasoning_details",),
    }

    def __init__(
        self, *, site_url: str | None = None, app_name: str | None = None, **options: Unpack[ConnectionOptions]
    ) -> None:
        self.site_url = site_url or os.environ.get("OPENROUTER_SITE_URL")
        self.app_name = app_name or os.environ.get("OPENROUTER_APP_NAME")
        super().__init__(**options)

    @classmethod
    def environment(cls) -> tuple[str, ...]:
        return (*super().environment(), "OPENROUTER_SITE_URL", "OPENROUTER_APP_NAME")

    def default_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.site_url:
            headers["HTTP-Referer"] = self.site_url
        if self.app_name:
            headers["X-Title"] = self.app_name
        return headers

    def error_details(self, error: Mapping[str, Any]) -> str | None:
        # "Provider returned error" says nothing; the upstream vendor's own words are in metadata.
        metadata = error.get("metadata")
        if not isinstance(metadata, Mapping):
            return None
        raw = metadata.get("raw")
        if raw is not None and not isinstance(raw, str):
            raw = json.dumps(raw, ensure_ascii=False)
        reasons = metadata.get("reasons")
        if not raw and isinstance(reasons, list) and reasons:
            raw = "flagged: " + ", ".join(map(str, reasons))
        upstream = metadata.get("provider_name")
        if raw and isinstance(upstream, str) and upstream:
            return f"{upstream}: {raw}"
        return raw or None


class TogetherProvider(CloudProvider):
    """Together AI (``api.together.xyz/v1``); its model listing is a bare JSON list."""

    name = "together"
    label = "Together AI"
    default_base_url = "https://api.together.xyz/v1"
    base_url_env = "TOGETHER_BASE_URL"
    api_key_env = "TOGETHER_API_KEY"
