"""The model families served on Azure, as `ModelProfile` fields.

A family is chosen from the deployment (or model) name, e.g. ``Phi-4-mini-instruct`` → ``phi-4``;
pass ``profile=`` to `AzureModel` when a deployment's name does not tell its model, or call
``discover_profile()`` on a Model Inference endpoint, whose ``GET /info`` names the model.
Catalog families carry what the Model Inference API schema lacks: JSON-schema output and
``stream_options``.
"""

from __future__ import annotations

from typing import Any

from .._profile import FamilyTable, ModelProfile, build_profile, family_fields

__all__ = ["AZURE_FAMILIES", "CATALOG_DEFAULT", "PROFILES", "AzureProfile", "profile_for"]

AzureProfile = ModelProfile
"""Deprecated alias: Azure profiles are `ModelProfile` objects."""

_CATALOG: dict[str, Any] = {"json_schema": False, "stream_usage": False}
_NO_SYSTEM_NO_TOOLS: dict[str, Any] = {"system_role": False, "tools": False}
_REASONING: dict[str, Any] = {"max_tokens_field": "max_completion_tokens", "reasoning": "reasoning_effort"}

# Order matters: the first pattern found in the lower-cased name wins.
AZURE_FAMILIES: FamilyTable = (
    (r"o1-(mini|preview)", {"family": "o1-mini", **_NO_SYSTEM_NO_TOOLS, "json_schema": False, **_REASONING}),
    (r"(^|[^a-z])(o1|o3|o4)", {"family": "o-series", **_REASONING}),
    (r"gpt-5", {"family": "gpt-5", **_REASONING}),
    (r"gpt|chatgpt|davinci", {"family": "gpt"}),
    (r"deepseek-r1|mai-ds-r1", {"family": "deepseek-r1", **_NO_SYSTEM_NO_TOOLS, **_CATALOG}),
    (r"deepseek", {"family": "deepseek", **_CATALOG}),
    (r"phi-4", {"family": "phi-4", "tools": False, **_CATALOG}),
    (r"phi", {"family": "phi", **_NO_SYSTEM_NO_TOOLS, **_CATALOG}),
    (r"llama-?2|llama-?3-|llama-?3$|meta-llama-3-", {"family": "llama-legacy", "tools": False, **_CATALOG}),
    (r"llama", {"family": "llama", **_CATALOG}),
    (r"mistral-7b|mixtral", {"family": "mistral-legacy", **_NO_SYSTEM_NO_TOOLS, **_CATALOG}),
    (r"mistral|ministral|codestral|pixtral", {"family": "mistral", **_CATALOG}),
    (r"cohere|command", {"family": "cohere", **_CATALOG}),
    (r"jamba|ai21", {"family": "jamba", **_CATALOG}),
)

CATALOG_DEFAULT: dict[str, Any] = {"family": "catalog-default", **_CATALOG}
"""Unknown names on catalog routes: those APIs reject JSON-schema output and ``stream_options``."""

PROFILES: dict[str, ModelProfile] = {str(fields["family"]): build_profile([fields]) for _, fields in AZURE_FAMILIES}
PROFILES["default"] = ModelProfile("default")
"""Every known profile by family name (``AzureModel(profile="llama")`` looks names up here)."""


def profile_for(name: str, *, catalog: bool = False) -> ModelProfile:
    """The profile for a deployment or model name; an unknown name gets the permissive default
    (on catalog routes: no JSON-schema output and no stream_options)."""
    lowered = name.lower()
    if lowered in PROFILES:
        return PROFILES[lowered]
    fields = family_fields(lowered, AZURE_FAMILIES)
    if fields:
        return build_profile([fields])
    return build_profile([CATALOG_DEFAULT]) if catalog else PROFILES["default"]
