"""The schema side of structured output: what JSON schema a Python type becomes on the wire, and
how an answer's text becomes a validated object of that type.

Any type pydantic's `TypeAdapter` takes can be asked for (models, dataclasses, TypedDicts,
``list[...]``, unions, scalars). Backends want an object at the root of a schema, so anything else
travels wrapped as ``{"result": ...}`` and is unwrapped before validation. The schema is sent in
OpenAI's strict form when it fits the subset strict mode enforces; otherwise as it is, unenforced
parts left to validation.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._exceptions import ConfigurationError

__all__ = ["WRAP_KEY", "OutputSchema", "Problem", "json_in_text", "output_schema"]

WRAP_KEY = "result"
"""The one property a non-object root is wrapped in."""

# Keywords OpenAI's strict mode enforces everywhere it is offered; a schema using anything else
# is sent without ``strict`` (validation still checks it).
_STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref", "$defs"}
)
_ANNOTATIONS = frozenset({"title", "description"})
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    """Why an answer is not a valid output: a short text the caller (and a re-ask) can read."""

    summary: str
    errors: tuple[str, ...] = ()
    parsed: bool = False
    """The text was JSON (only its values did not fit)."""


@dataclass(frozen=True, eq=False)
class OutputSchema:
    """One output type, ready to send and to validate."""

    target: Any
    name: str
    schema: dict[str, Any]
    """Object-rooted JSON schema, as sent without strict mode."""
    strict_schema: dict[str, Any] | None
    """The same schema in OpenAI's strict form, or None when strict mode can't express it."""
    wrapped: bool
    adapter: TypeAdapter[Any]

    @property
    def description(self) -> str | None:
        text = self.schema.get("description")
        return text if isinstance(text, str) else None

    def validate(self, value: Any) -> Any:
        """The validated object for a parsed JSON `value`; raises pydantic's `ValidationError`."""
        if self.wrapped:
            if not isinstance(value, Mapping) or WRAP_KEY not in value:
                # A model that answered with the bare value instead of the wrapper is still understood.
                return self.adapter.validate_python(value)
            value = value[WRAP_KEY]
        return self.adapter.validate_python(value)

    def unwrap(self, value: Any) -> Any:
        """The part of a (partial) JSON value that is the output itself."""
        if self.wrapped and isinstance(value, Mapping):
            return value.get(WRAP_KEY)
        return value

    def check(self, value: Any) -> tuple[Any, Problem | None]:
        """(validated object, None), or (None, what is wrong)."""
        try:
            return self.validate(value), None
        except ValidationError as error:
            problems = error.errors(include_url=False, include_context=False, include_input=False)
            lines = tuple(
                f"{'.'.join(str(p) for p in problem['loc'] if p != WRAP_KEY or not self.wrapped) or '(root)'}: "
                f"{problem['msg']}"
                for problem in problems
            )
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            return None, Problem(f"it does not fit {self.name}: {lines[0]}{more}", lines, parsed=True)


def output_schema(target: Any) -> OutputSchema:
    """The `OutputSchema` of a type; built once per type (schema generation costs milliseconds)."""
    try:
        return _cached_schema(target)
    except TypeError:  # an unhashable type expression (Annotated with a dict...): build it each time
        return _build(target)


@functools.lru_cache(maxsize=256)
def _cached_schema(target: Any) -> OutputSchema:
    return _build(target)


def _build(target: Any) -> OutputSchema:
    if isinstance(target, (str, bytes)) or target is None:
        raise ConfigurationError(
            f"output={target!r} is not a type: pass the type to return, e.g. output=MyModel, output=list[Item]"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(target)
        raw = adapter.json_schema()
    except Exception as error:  # pydantic's schema errors have several classes; all mean the same here
        raise ConfigurationError(
            f"output={_shown(target)} can't be described as a JSON schema ({error}); pass a pydantic model, "
            "a dataclass, a TypedDict, or list/union/Literal types built from them"
        ) from None
    wrapped = raw.get("type") != "object" or "properties" not in raw
    schema = _wrap(raw) if wrapped else raw
    return OutputSchema(
        target=target,
        name=_name_of(target),
        schema=schema,
        strict_schema=_strict_form(schema),
        wrapped=wrapped,
        adapter=adapter,
    )


def _wrap(schema: dict[str, Any]) -> dict[str, Any]:
    inner = {key: value for key, value in schema.items() if key != "$defs"}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {WRAP_KEY: inner},
        "required": [WRAP_KEY],
        "additionalProperties": False,
    }
    if "$defs" in schema:
        wrapper["$defs"] = schema["$defs"]  # references point at the root's $defs
    return wrapper


def _strict_form(schema: Any) -> dict[str, Any] | None:
    """OpenAI strict form: every object closed and every property required; None if impossible."""
    try:
        converted = _strict(schema)
    except _NotStrict:
        return None
    return converted if isinstance(converted, dict) else None


class _NotStrict(Exception):
    pass


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATIONS or key == "default":
            # Defaults mean nothing when every property must be sent; annotations are kept.
            if key != "default":
                out[key] = value
            continue
        if key not in _STRICT_KEYWORDS:
            raise _NotStrict(key)
        if key in ("properties", "$defs"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key == "additionalProperties":
            if value not in (False, None):
                raise _NotStrict(key)  # a dict[str, X] has no strict form
        else:
            out[key] = _strict(value)
    if out.get("type") == "object":
        properties = out.get("properties", {})
        out["properties"] = properties
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def json_in_text(text: str) -> tuple[Any, Problem | None]:
    """The JSON value an answer's text holds: the whole text, or inside a code fence, or the
    outermost ``{...}``/``[...]`` of a text with words around it. (value, None) or (None, problem)."""
    stripped = text.strip()
    if not stripped:
        return None, Problem("the answer was empty")
    fenced = _FENCE.match(stripped)
    candidates = [fenced.group(1).strip()] if fenced else [stripped]
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except ValueError:
            continue
    shown = stripped if len(stripped) <= 80 else stripped[:77] + "..."
    return None, Problem(f"it is not JSON: {shown!r}")


def _name_of(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if not isinstance(name, str) or getattr(target, "__origin__", None) is not None:
        name = repr(target).replace("typing.", "")
    cleaned = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_")
    return (cleaned or "output")[:64]


def _shown(target: Any) -> str:
    text = repr(target)
    return text if len(text) <= 80 else text[:77] + "..."
