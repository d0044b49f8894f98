"""Capability profiles of the model families served on Azure, and the request adaptations they drive.

A profile is chosen from the deployment (or model) name, e.g. ``Phi-4-mini-instruct`` → ``phi``;
pass ``profile=`` to `AzureModel` when a deployment's name does not tell its model. Requests are
adapted before they leave (a system message folded into the first user turn, ``stream_options``
left out) and unsupported features fail locally with a clear message instead of at the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from .._exceptions import UnprocessableEntityError
from .._messages import Message, TextPart
from .._settings import Settings

__all__ = ["PROFILES", "AzureProfile", "adapt_messages", "check_settings", "profile_for"]


@dataclass(frozen=True)
class AzureProfile:
    """What a model family accepts on Azure.

    `system_role`: takes ``system`` messages (else they are folded into the first user turn).
    `tools`: takes ``tools``. `json_schema`: takes a JSON-schema ``response_format``.
    `stream_usage`: takes ``stream_options.include_usage`` (else it is not sent).
    `max_tokens_field`: the body field for ``max_tokens``.
    """

    family: str
    system_role: bool = True
    tools: bool = True
    json_schema: bool = True
    stream_usage: bool = True
    max_tokens_field: str = "max_tokens"

    def with_(self, **changes: Any) -> AzureProfile:
        """A copy with some capabilities changed, e.g. ``profile_for("llama").with_(tools=False)``."""
        return replace(self, **changes)


# Order matters: the first pattern that matches the lower-cased name wins.
# Catalog families: the Model Inference API schema has no JSON-schema output or stream_options.
_CATALOG: dict[str, Any] = {"json_schema": False, "stream_usage": False}

_TABLE: tuple[tuple[str, AzureProfile], ...] = (
    (r"o1-(mini|preview)", AzureProfile("o1-mini", False, False, False, True, "max_completion_tokens")),
    (r"(^|[^a-z])(o1|o3|o4)", AzureProfile("o-series", max_tokens_field="max_completion_tokens")),
    (r"gpt-5", AzureProfile("gpt-5", max_tokens_field="max_completion_tokens")),
    (r"gpt|chatgpt|davinci", AzureProfile("gpt")),
    (r"deepseek-r1|mai-ds-r1", AzureProfile("deepseek-r1", system_role=False, tools=False, **_CATALOG)),
    (r"deepseek", AzureProfile("deepseek", **_CATALOG)),
    (r"phi-4", AzureProfile("phi-4", tools=False, **_CATALOG)),
    (r"phi", AzureProfile("phi", system_role=False, tools=False, **_CATALOG)),
    (r"llama-?2|llama-?3-|llama-?3$|meta-llama-3-", AzureProfile("llama-legacy", tools=False, **_CATALOG)),
    (r"llama", AzureProfile("llama", **_CATALOG)),
    (r"mistral-7b|mixtral", AzureProfile("mistral-legacy", system_role=False, tools=False, **_CATALOG)),
    (r"mistral|ministral|codestral|pixtral", AzureProfile("mistral", **_CATALOG)),
    (r"cohere|command", AzureProfile("cohere", **_CATALOG)),
    (r"jamba|ai21", AzureProfile("jamba", **_CATALOG)),
)

PROFILES: dict[str, AzureProfile] = {profile.family: profile for _, profile in _TABLE}
PROFILES["default"] = AzureProfile("default")
"""Every known profile by family name (``AzureModel(profile="llama")`` looks names up here)."""

_CATALOG_DEFAULT = AzureProfile("catalog-default", json_schema=False, stream_usage=False)


def profile_for(name: str, *, catalog: bool = False) -> AzureProfile:
    """The profile for a deployment or model name; an unknown name gets the permissive default
    (on catalog routes: no JSON-schema output and no stream_options, which those APIs reject)."""
    lowered = name.lower()
    if lowered in PROFILES:
        return PROFILES[lowered]
    for pattern, profile in _TABLE:
        if re.search(pattern, lowered):
            return profile
    return _CATALOG_DEFAULT if catalog else PROFILES["default"]


def adapt_messages(messages: list[Message], profile: AzureProfile) -> list[Message]:
    """Fold system/developer messages into the first user turn for families without a system role."""
    if profile.system_role:
        return messages
    instructions = [m.text for m in messages if m.role in ("system", "developer") and m.text]
    rest = [m for m in messages if m.role not in ("system", "developer")]
    if not instructions:
        return rest
    preamble = "\n\n".join(instructions)
    for index, message in enumerate(rest):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                folded: Message = message.model_copy(update={"content": [TextPart(text=preamble + "\n\n"), *content]})
            else:
                folded = message.model_copy(update={"content": f"{preamble}\n\n{content or ''}".rstrip()})
            return [*rest[:index], folded, *rest[index + 1 :]]
    return [Message(role="user", content=preamble), *rest]


def _is_json_schema(fmt: Any) -> bool:
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return True
    return isinstance(fmt, Mapping) and fmt.get("type") == "json_schema"


def check_settings(settings: Settings, profile: AzureProfile, deployment: str) -> None:
    """Refuse, before sending, a feature the family cannot do.

    Raised as the 422 the Model Inference API itself answers for an unsupported parameter (with
    ``param`` set and ``phase="local"``: nothing was sent), so a fallback chain moves on to a model
    that has the capability; the message says how to proceed.
    """
    override = f"if deployment {deployment!r} does support it, pass profile=... to override (see docs/azure.md)"
    if settings.get("tools") and not profile.tools:
        raise _unsupported(
            f"the {profile.family!r} model family on Azure does not support tools; use a model that does "
            f"(e.g. a gpt or llama-3.1+ deployment), or {override}",
            "tools",
            deployment,
        )
    if "response_format" in settings and _is_json_schema(settings["response_format"]) and not profile.json_schema:
        raise _unsupported(
            f"the {profile.family!r} model family on Azure does not support a JSON-schema response_format; "
            f"use response_format='json' and describe the shape in the prompt, or {override}",
            "response_format",
            deployment,
        )


def _unsupported(message: str, param: str, deployment: str) -> UnprocessableEntityError:
    return UnprocessableEntityError(
        message,
        status=422,
        param=param,
        code="unsupported_capability",
        provider="azure",
        model=deployment,
        phase="local",
        retryable=False,
    )
