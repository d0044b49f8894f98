"""Tools from plain Python: functions and pydantic models described as `Tool`s, and typed
arguments for the tool calls a model sends back.

A function's type hints and docstring become the JSON schema the model sees, through a pydantic
model of its parameters; the same model later validates the arguments the model sent, so what
the function receives is what its signature promised.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError, create_model

from ._error_tree import ProviderError
from ._exceptions import ConfigurationError
from ._settings import Tool

if TYPE_CHECKING:
    from ._messages import ToolCall

__all__ = ["ToolArgumentsError", "as_tool", "as_tools", "parse_tool_call", "tool", "tool_choice_name", "tool_names"]

ToolLike = Any
"""A function (sync or async), a pydantic model class, an `mm.Tool` or an OpenAI-style dict."""


class ToolArgumentsError(ProviderError):
    """The model called a tool with arguments that do not fit it: invalid JSON, or values the
    tool's parameters do not accept, or the name of a tool that was not offered.

    `raw_arguments` is the text the model sent; `tool_name` the tool it named; `errors` the
    validation problems (pydantic's list, empty when the JSON itself was broken).
    """

    def __init__(
        self,
        message: str,
        *,
        tool_name: str,
        raw_arguments: str,
        errors: Sequence[Mapping[str, Any]] = (),
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.tool_name = tool_name
        self.raw_arguments = raw_arguments
        self.errors = [dict(error) for error in errors]


# A function's or a model's tool is built once: inspecting the signature and generating the
# schema take milliseconds, a look-up here microseconds, and settings are checked on every call.
# Weak keys let functions and classes defined in a loop be collected.
_BUILT: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()


def tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
    """Describe a typed Python function (sync or async) as a `Tool`.

    The parameters' type hints become the JSON schema of its arguments (per-parameter text from
    ``Annotated[..., Field(description=...)]``), the first paragraph of the docstring its
    description. `name` and `description` replace the function's own.
    """
    if isinstance(fn, type) and issubclass(fn, BaseModel):
        built = _cached(fn, _model_tool)
    elif callable(fn) and not isinstance(fn, type):
        built = _cached(fn, _function_tool)
    else:
        raise ConfigurationError(
            f"mm.tool() takes a function or a pydantic model class, got {_shown(fn)}; "
            "describe anything else with mm.Tool(name=..., parameters={...JSON schema...})"
        )
    changes = {key: value for key, value in (("name", name), ("description", description)) if value is not None}
    return built.model_copy(update=changes) if changes else built


def as_tool(item: ToolLike) -> Tool | Mapping[str, Any]:
    """One entry of ``tools=[...]`` in the form the codecs encode: a `Tool` or a dict as given."""
    if isinstance(item, (Tool, Mapping)):
        return item
    if (isinstance(item, type) and issubclass(item, BaseModel)) or (callable(item) and not isinstance(item, type)):
        try:
            return tool(item)
        except ConfigurationError as error:
            raise ConfigurationError(f"setting 'tools': {error.message}") from None
    raise ConfigurationError(
        f"setting 'tools': {_shown(item)} is not a tool; pass a typed function, a pydantic model class, "
        "mm.tool(fn, name=..., description=...), an mm.Tool or an OpenAI-style tool dict"
    )


def as_tools(items: Any) -> list[Tool | Mapping[str, Any]]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ConfigurationError(
            f"setting 'tools' must be a list of tools (functions, pydantic model classes, mm.Tool or tool "
            f"dicts), got {_shown(items)}"
        )
    return [as_tool(item) for item in items]


def tool_choice_name(choice: Any) -> Any:
    """``tool_choice`` given as the function, model class or `Tool` itself → that tool's name."""
    if isinstance(choice, Tool):
        return choice.name
    if (isinstance(choice, type) and issubclass(choice, BaseModel)) or (
        callable(choice) and not isinstance(choice, type)
    ):
        return tool(choice).name
    return choice


def parse_tool_call(call: ToolCall, tools: Sequence[ToolLike]) -> Any:
    """The arguments of `call`, validated against the tool of that name in `tools`.

    A function tool gives a dict of keyword arguments ready for ``fn(**args)``; a model tool an
    instance of the model; a tool given only as a schema (`mm.Tool`, a dict) the parsed JSON
    object, unvalidated. Anything that does not fit raises `ToolArgumentsError`.
    """
    offered = {_name_of(entry): entry for entry in as_tools(tools)}
    entry = offered.get(call.name)
    if entry is None:
        raise ToolArgumentsError(
            f"the model called {call.name!r}, which is not one of the tools given "
            f"({', '.join(map(repr, offered)) or 'none'})",
            tool_name=call.name,
            raw_arguments=call.raw_arguments,
        )
    if call.arguments_error is not None:
        raise ToolArgumentsError(
            f"the model's arguments for {call.name!r} are not usable: {call.arguments_error}",
            tool_name=call.name,
            raw_arguments=call.raw_arguments,
        )
    validator = entry._validator if isinstance(entry, Tool) else None
    if validator is None:
        return dict(call.arguments)
    try:
        return validator(call.arguments)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        raise ToolArgumentsError(
            f"the model's arguments for {call.name!r} do not fit the tool: {where}: {first['msg']}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            tool_name=call.name,
            raw_arguments=call.raw_arguments,
            errors=problems,
        ) from None


def tool_names(tools: Sequence[Tool | Mapping[str, Any]]) -> list[str]:
    """The names of tools already in codec form (see `as_tools`)."""
    return [_name_of(entry) for entry in tools]


# ------------------------------------------------------------------------------------ building


def _name_of(entry: Tool | Mapping[str, Any]) -> str:
    if isinstance(entry, Tool):
        return entry.name
    function = entry.get("function")
    source = function if isinstance(function, Mapping) else entry
    return str(source.get("name", ""))


def _cached(source: Any, build: Callable[[Any], Tool]) -> Tool:
    try:
        return _BUILT[source]
    except (KeyError, TypeError):  # TypeError: an object that cannot be weakly referenced
        pass
    built = build(source)
    with contextlib.suppress(TypeError):
        _BUILT[source] = built
    return built


def _function_tool(fn: Callable[..., Any]) -> Tool:
    label = getattr(fn, "__qualname__", None) or type(fn).__name__
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"cannot read the signature of {label}; wrap it in a typed def, or describe it with mm.Tool(...)"
        ) from None
    target = fn if inspect.isroutine(fn) else type(fn).__call__
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as error:  # a hint naming something undefined: NameError and friends
        raise ConfigurationError(f"cannot resolve the type hints of {label}: {error}") from None
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            prefix = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}
            shown = f"{prefix[param.kind]}{param.name}" if param.kind in prefix else f"{param.name} (positional-only)"
            raise ConfigurationError(
                f"tool {label}: parameter {shown} cannot be described to a model, which sends named "
                "arguments only; give the function named, typed parameters"
            )
        if param.name not in hints:
            raise ConfigurationError(
                f"tool {label}: parameter {param.name!r} has no type hint; annotate every parameter "
                f"(e.g. {param.name}: str) so its JSON schema can be built"
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    try:
        arguments = create_model(f"{getattr(fn, '__name__', label)}_arguments", **fields)
        schema = _clean_schema(arguments.model_json_schema())
    except Exception as error:  # pydantic cannot build a schema for one of the types
        raise ConfigurationError(
            f"tool {label}: its parameters have no JSON schema ({error}); use JSON-friendly types "
            "(str, int, float, bool, lists, dicts, enums, pydantic models)"
        ) from None
    built = Tool(name=getattr(fn, "__name__", label), description=_summary(fn), parameters=schema)
    built._validator = lambda data: _as_keywords(arguments.model_validate(data))
    built._function = fn
    return built


def _model_tool(model: type[BaseModel]) -> Tool:
    schema = model.model_json_schema()
    description = schema.pop("description", None) or _summary(model)
    built = Tool(name=model.__name__, description=description, parameters=_clean_schema(schema))
    built._validator = model.model_validate
    return built


def _as_keywords(arguments: BaseModel) -> dict[str, Any]:
    # Attributes, not model_dump(): a parameter typed as a pydantic model receives the model.
    return {name: getattr(arguments, name) for name in type(arguments).model_fields}


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # Titles pydantic derives from names ("get_weather_arguments", "City") repeat what the tool's
    # and the properties' names say, and cost tokens on every request.
    _drop_titles(schema)
    schema.setdefault("properties", {})
    return schema


_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")


def _drop_titles(node: Any) -> None:
    # Only schema nodes are visited, so a property *named* "title" or a default value holding a
    # "title" key is left alone.
    if not isinstance(node, dict):
        return
    if isinstance(node.get("title"), str):
        del node["title"]
    for key in _SUBSCHEMA_MAPS:
        for child in (node.get(key) or {}).values():
            _drop_titles(child)
    for key in _SUBSCHEMA_LISTS:
        for child in node.get(key) or ():
            _drop_titles(child)
    for key in _SUBSCHEMA_ONE:
        _drop_titles(node.get(key))


def _summary(obj: Any) -> str | None:
    """The first paragraph of a docstring, on one line."""
    doc = inspect.getdoc(obj)
    if not doc or (isinstance(obj, type) and obj.__doc__ is None):
        return None
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split()) or None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
