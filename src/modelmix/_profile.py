"""`ModelProfile`: what one model, on one backend, really enforces — and the one check that reads it.

A profile is assembled from four sources, each overriding the one before:

1. a table by model family (a name pattern → the fields that family changes);
2. the provider's defaults (what the server itself enforces or repairs, e.g. a catalog route that
   rejects ``stream_options``, a local server whose streams carry no usage);
3. discovery, when the server can tell and the caller asks (``model.discover_profile()``);
4. the user's ``profile=`` option: a complete `ModelProfile`, a family name, or a mapping of fields.

Features choose their strategy from the profile (which field carries ``max_tokens``, whether to ask
for usage in a stream, how to fold a system message), never from the provider's name; a request
the profile says the backend cannot honour fails before sending with `UnsupportedCapabilityError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel

from ._exceptions import ConfigurationError, UnsupportedCapabilityError
from ._messages import ImagePart, Message
from ._settings import Settings

__all__ = [
    "ALL_TOOL_CHOICES",
    "PERMISSIVE",
    "FamilyTable",
    "ModelProfile",
    "ProfileOverride",
    "build_profile",
    "check_request",
    "family_fields",
]

ToolChoiceForm = Literal["auto", "none", "required", "function"]
JSONSchemaVia = Literal["response_format", "json_object_schema", "format", "json_schema"]
ReasoningControl = Literal["reasoning_effort", "think", "reasoning_object", "chat_template"]
"""How a backend takes the ``reasoning=`` setting: OpenAI's ``reasoning_effort`` field, Ollama's
``think`` switch, a ``reasoning`` object with an ``effort`` (OpenRouter, the Responses API), or the
chat template's ``enable_thinking`` switch (Qwen3 on vLLM and llama.cpp)."""
WireAPI = Literal["chat", "responses"]

ALL_TOOL_CHOICES: frozenset[str] = frozenset({"auto", "none", "required", "function"})
REASONING_ECHO: frozenset[str] = frozenset({"reasoning_content", "reasoning_details", "thought_signature"})


@dataclass(frozen=True)
class ModelProfile:
    """What a model on one backend enforces (not merely accepts). Immutable; `with_` copies.

    ``family`` names the profile (``"gpt"``, ``"o-series"``, ``"phi-4"`` ...). Everything else
    says what a request may contain and how the wire format must carry it.
    """

    family: str = "default"
    system_role: bool = True
    """Takes ``system``/``developer`` messages; otherwise they are folded into the first user turn."""
    tools: bool = True
    """Takes ``tools`` (function calling)."""
    json_schema: bool = True
    """Enforces a JSON-schema ``response_format`` (structured output)."""
    stream_usage: bool = True
    """Reports usage in a stream when asked with ``stream_options.include_usage`` (False: not asked)."""
    max_tokens_field: str = "max_tokens"
    """The body field that carries ``max_tokens`` (reasoning models want ``max_completion_tokens``)."""
    parallel_tool_calls: bool = True
    """Honours ``parallel_tool_calls``."""
    tool_choice: frozenset[str] = ALL_TOOL_CHOICES
    """Accepted ``tool_choice`` forms: ``auto``, ``none``, ``required`` and ``function`` (one named tool)."""
    json_schema_via: JSONSchemaVia = "response_format"
    """How a JSON schema travels: OpenAI ``response_format`` (``type: json_schema``),
    ``json_object_schema`` (``response_format: {"type": "json_object", "schema": ...}``, the one
    shape both llama.cpp servers take), Ollama ``format``, or the top-level ``json_schema`` field
    of llama.cpp's own server."""
    json_mode: bool = True
    """Takes ``response_format="json"`` (any JSON object)."""
    images: bool = True
    """Takes image parts in user messages."""
    content_parts: bool = True
    """Takes a list of content parts where text is expected; False: content always travels as one
    string, a list of text parts joined into lines and a turn that only calls tools as ``""``,
    since some servers fail on a list or a missing content (llama-cpp-python answers 500)."""
    reasoning: ReasoningControl | None = None
    """How reasoning effort is controlled (``reasoning_effort``, Ollama's ``think``), None when it is not."""
    context_window: int | None = None
    """Tokens the model reads (prompt and answer), when known."""
    max_output_tokens: int | None = None
    """The largest answer the backend produces, when known."""
    retry_conflict: bool = False
    """A 409 is a transient lock timeout worth retrying (OpenAI), not a real conflict."""
    text_tool_calls: bool = False
    """The server may print ``<tool_call>{...}</tool_call>`` as text; turn it into tool calls."""
    estimate_usage: bool = False
    """Count usage offline (``Usage.estimated``) when the server sends none."""
    preferred_api: WireAPI = "chat"
    """The wire protocol the vendor recommends for this model (``"responses"`` for OpenAI's
    reasoning models); ``api="auto"`` follows it, the default ``api="chat"`` does not."""
    reasoning_echo: frozenset[str] = frozenset()
    """What a chat server wants back on an assistant turn that called tools, kept in the turn's
    `ReasoningState`: ``reasoning_content`` (DeepSeek's thinking mode), ``reasoning_details``
    (OpenRouter), ``thought_signature`` (Gemini's ``extra_content``)."""

    def with_(self, **changes: Any) -> ModelProfile:
        """A copy with some fields changed, e.g. ``profile.with_(tools=False)``."""
        return _replace(self, changes)


PERMISSIVE = ModelProfile()
"""The profile of a model that declares nothing: every capability allowed, no repairs."""

ProfileOverride = Union[ModelProfile, Mapping[str, Any], str, None]
"""What ``profile=`` accepts: a complete profile, a mapping of fields, or a family name."""

FamilyTable = Sequence[tuple[str, Mapping[str, Any]]]
"""``(regex, fields)`` pairs; the first pattern found in the lower-cased model name wins."""

_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelProfile))


def _replace(profile: ModelProfile, changes: Mapping[str, Any]) -> ModelProfile:
    unknown = set(changes) - _FIELDS
    if unknown:
        raise ConfigurationError(
            f"unknown profile field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_FIELDS))}"
        )
    fixed = dict(changes)
    for name in ("tool_choice", "reasoning_echo"):
        if name in fixed and not isinstance(fixed[name], frozenset):
            fixed[name] = frozenset([fixed[name]] if isinstance(fixed[name], str) else fixed[name])
    unknown_echo = set(fixed.get("reasoning_echo", ())) - REASONING_ECHO
    if unknown_echo:
        raise ConfigurationError(
            f"unknown reasoning_echo value(s) {', '.join(sorted(unknown_echo))}; "
            f"known: {', '.join(sorted(REASONING_ECHO))}"
        )
    return dataclasses.replace(profile, **fixed)


def family_fields(name: str, table: FamilyTable) -> Mapping[str, Any]:
    """The fields the first matching family in `table` sets for model `name` (empty: no match)."""
    lowered = name.lower()
    for pattern, fields in table:
        if re.search(pattern, lowered):
            return fields
    return {}


def build_profile(
    layers: Iterable[Mapping[str, Any]],
    override: ProfileOverride = None,
    *,
    named: Mapping[str, ModelProfile] | None = None,
    kind: str = "profile",
) -> ModelProfile:
    """Merge `layers` (provider defaults, family table, discovery) in order, then the user's override.

    A string override picks a profile from `named` by family name.
    """
    profile = ModelProfile()
    for layer in layers:
        if layer:
            profile = _replace(profile, layer)
    if override is None:
        return profile
    if isinstance(override, ModelProfile):
        return override
    if isinstance(override, str):
        found = (named or {}).get(override.lower())
        if found is None:
            known = ", ".join(sorted(named or {})) or "none"
            raise ConfigurationError(
                f"unknown {kind} {override!r}; use one of {known}, a ModelProfile(...) or a mapping of fields"
            )
        return found
    return _replace(profile, override)


# ------------------------------------------------------------------------------------ checks


def _schema_requested(fmt: Any) -> bool:
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return True
    return isinstance(fmt, Mapping) and fmt.get("type") == "json_schema"


def _choice_form(choice: Any) -> str:
    if isinstance(choice, str):
        return choice if choice in ("auto", "none", "required") else "function"
    return "function"


def _has_images(messages: Sequence[Message]) -> bool:
    return any(isinstance(m.content, list) and any(isinstance(p, ImagePart) for p in m.content) for m in messages)


def check_request(
    profile: ModelProfile, messages: Sequence[Message], settings: Settings, *, provider: str, model: str
) -> None:
    """Refuse, before anything is sent, a request `profile` says the backend cannot honour."""
    problem = _first_problem(profile, messages, settings)
    if problem is None:
        return
    capability, param, what, instead = problem
    raise UnsupportedCapabilityError(
        f"{provider}:{model} (profile {profile.family!r}) does not support {what}; {instead}, or if this model "
        f"does support it pass profile={{{capability!r}: ...}} to override",
        capability=capability,
        param=param,
        provider=provider,
        model=model,
    )


def _first_problem(
    profile: ModelProfile, messages: Sequence[Message], settings: Settings
) -> tuple[str, str, str, str] | None:
    if settings.get("tools") and not profile.tools:
        return "tools", "tools", "tools", "use a model that does"
    if "tool_choice" in settings and profile.tools:
        form = _choice_form(settings["tool_choice"])
        if form not in profile.tool_choice:
            return (
                "tool_choice",
                "tool_choice",
                f"tool_choice={form!r}",
                "use one of " + ", ".join(sorted(profile.tool_choice)),
            )
    if settings.get("parallel_tool_calls") and not profile.parallel_tool_calls:
        return "parallel_tool_calls", "parallel_tool_calls", "parallel tool calls", "leave parallel_tool_calls unset"
    fmt = settings.get("response_format")
    if fmt is not None and _schema_requested(fmt) and not profile.json_schema:
        return (
            "json_schema",
            "response_format",
            "a JSON-schema response_format",
            "use response_format='json' and describe the shape in the prompt",
        )
    if fmt == "json" and not profile.json_mode:
        return "json_mode", "response_format", "response_format='json'", "ask for JSON in the prompt"
    if not profile.images and _has_images(messages):
        return "images", "messages", "image inputs", "send text only or use a vision model"
    level = settings.get("reasoning")
    if level is not None and level != "off" and profile.reasoning is None:
        # "off" needs no control on a model that doesn't reason; an effort level does.
        return (
            "reasoning",
            "reasoning",
            f"reasoning={level!r} (its profile has no reasoning control)",
            "leave reasoning unset to get the model's own default",
        )
    return None
