"""Call settings: one typed dictionary, merged model default ← call.

A `TypedDict` rather than a class so that ``model.chat(msgs, temperature=0.2)`` type-checks key by
key (via ``Unpack``) and so defaults merge with a plain dict update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from ._exceptions import ConfigurationError

__all__ = ["ResponseFormat", "Settings", "Tool", "ToolChoice", "merge_settings"]


class Tool(BaseModel):
    """A function the model may call. `parameters` is a JSON schema for its arguments."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


ToolChoice = Union[Literal["auto", "none", "required"], str]
"""``"auto"``, ``"none"``, ``"required"`` or the name of one tool that must be called."""

ResponseFormat = Union[Literal["text", "json"], Mapping[str, Any], type[BaseModel]]
"""``"json"`` for any JSON object, a JSON-schema response_format dict, or a pydantic model class."""


class Settings(TypedDict, total=False):
    """Everything a call can tune. Unset keys fall back to the model's defaults, then the server's."""

    temperature: float
    top_p: float
    max_tokens: int
    stop: str | Sequence[str]
    seed: int
    presence_penalty: float
    frequency_penalty: float
    timeout: float
    """Seconds for this call (network timeout; the resilience layer adds a total deadline)."""
    tools: Sequence[Tool | Mapping[str, Any]]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    response_format: ResponseFormat
    user: str
    extra_body: Mapping[str, Any]
    """Provider-specific request fields, sent as they are (e.g. ``{"reasoning_effort": "low"}``)."""
    extra_headers: Mapping[str, str]
    """Extra HTTP headers for this call."""


_KNOWN = frozenset(Settings.__annotations__)


def merge_settings(defaults: Mapping[str, Any] | None, call: Mapping[str, Any]) -> Settings:
    """Model defaults overlaid with the call's settings; unknown keys are a typed error.

    ``extra_body`` and ``extra_headers`` merge one level deep so a call can add a field without
    dropping the model's.
    """
    unknown = sorted(set(call) - _KNOWN)
    if defaults:
        unknown += sorted(set(defaults) - _KNOWN)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(map(repr, unknown))}; known settings are "
            f"{', '.join(sorted(_KNOWN))}. Pass provider-specific fields in extra_body={{...}}"
        )
    merged: dict[str, Any] = dict(defaults or {})
    for key, value in call.items():
        if key in ("extra_body", "extra_headers") and key in merged:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged  # type: ignore[return-value]
