"""Call settings: one typed dictionary, merged model default ← call.

A `TypedDict` rather than a class so that ``model.chat(msgs, temperature=0.2)`` type-checks key by
key (via ``Unpack``) and so defaults merge with a plain dict update.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationError
from typing_extensions import TypedDict

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "ResponseFormat",
    "Settings",
    "Tool",
    "ToolChoice",
    "check_headers",
    "check_settings",
    "check_timeout",
    "depends_on_server_state",
    "merge_settings",
]


class Tool(BaseModel):
    """A function the model may call. `parameters` is a JSON schema for its arguments.

    Built by hand it is a description only; built by `mm.tool(fn)` (or from a function or a
    pydantic model class in ``tools=[...]``) it also knows how to validate the arguments of a call
    and, for a function, which function it describes.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    _validator: Callable[[Any], Any] | None = PrivateAttr(default=None)
    _function: Callable[..., Any] | None = PrivateAttr(default=None)

    @property
    def function(self) -> Callable[..., Any] | None:
        """The Python function this tool describes (sync or async), or None for a schema-only tool."""
        return self._function


ToolChoice = Union[Literal["auto", "none", "required"], str, Tool, Callable[..., Any], type[BaseModel]]
"""``"auto"``, ``"none"``, ``"required"``, or one tool that must be called: its name, or the function,
model class or `Tool` itself."""

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
    tools: Sequence[Tool | Mapping[str, Any] | Callable[..., Any] | type[BaseModel]]
    """Typed functions (sync or async), pydantic model classes, `mm.tool(...)`/`mm.Tool` or tool dicts."""
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    response_format: ResponseFormat
    user: str
    extra_body: Mapping[str, Any]
    """Provider-specific request fields, sent as they are (e.g. ``{"reasoning_effort": "low"}``)."""
    extra_headers: Mapping[str, str]
    """Extra HTTP headers for this call."""
    output: Any
    """Structured output: the type to return on ``response.output`` (a pydantic model, dataclass,
    TypedDict, ``list[...]``, a union... anything pydantic's ``TypeAdapter`` takes), validated."""
    output_strategy: Literal["native", "tool", "json", "prompt"]
    """How the output's schema reaches the model; by default the strongest the profile supports."""
    output_retries: int
    """How many times an invalid output is shown to the model to try again (default 0)."""
    reasoning: Literal["off", "minimal", "low", "medium", "high"]
    """How much the model should reason before it answers, sent the way its backend takes it
    (``reasoning_effort``, Ollama's ``think``, a ``reasoning`` object); refused before sending by a
    model whose profile has no reasoning control. Unset: the model's own default."""


_KNOWN = frozenset(Settings.__annotations__)

_Number = Annotated[float, Strict()]
_Whole = Annotated[int, Strict()]


class _CheckedSettings(TypedDict, total=False):
    """What each setting accepts, as pydantic checks it. Numbers are strict: ``"0.5"`` or ``True``
    for a temperature is a caller's mistake, not something to coerce and send."""

    temperature: Annotated[_Number, Field(ge=0)]
    top_p: Annotated[_Number, Field(ge=0, le=1)]
    max_tokens: Annotated[_Whole, Field(ge=1)]
    stop: Union[Annotated[str, Strict()], Sequence[Annotated[str, Strict()]]]
    seed: _Whole
    presence_penalty: Annotated[_Number, Field(ge=-2, le=2)]
    frequency_penalty: Annotated[_Number, Field(ge=-2, le=2)]
    timeout: Any  # a number or an httpx.Timeout: checked by `check_timeout`
    tools: Sequence[Union[Tool, Mapping[str, Any]]]
    tool_choice: Union[Annotated[str, Strict()], Mapping[str, Any]]
    parallel_tool_calls: Annotated[bool, Strict()]
    response_format: Union[Literal["text", "json"], Mapping[str, Any], type[BaseModel]]
    user: Annotated[str, Strict()]
    extra_body: Mapping[Annotated[str, Strict()], Any]
    extra_headers: Mapping[str, Any]  # names and values: checked by `check_headers`
    output: Any  # a type: checked when its schema is built
    output_strategy: Literal["native", "tool", "json", "prompt"]
    output_retries: Annotated[_Whole, Field(ge=0, le=10)]
    reasoning: Literal["off", "minimal", "low", "medium", "high"]


_ACCEPTED = {
    "temperature": "a number >= 0 (most servers take 0 to 2)",
    "top_p": "a number from 0 to 1",
    "max_tokens": "a whole number >= 1",
    "stop": "a string or a list of strings",
    "seed": "a whole number",
    "presence_penalty": "a number from -2 to 2",
    "frequency_penalty": "a number from -2 to 2",
    "timeout": "a number of seconds > 0 or an httpx.Timeout",
    "tools": "a list of typed functions, pydantic model classes, mm.Tool objects or tool dicts",
    "tool_choice": "'auto', 'none', 'required', or the name (or function, model class, mm.Tool) of a tool",
    "parallel_tool_calls": "True or False",
    "response_format": "'text', 'json', a response_format dict or a pydantic model class",
    "user": "a string",
    "extra_body": "a dict of provider-specific request fields with string keys",
    "extra_headers": "a dict of header names to header values",
    "output": "a type: a pydantic model, dataclass, TypedDict, list[...] or union of them",
    "output_strategy": "'native', 'tool', 'json' or 'prompt'",
    "output_retries": "a whole number from 0 to 10",
    "reasoning": "'off', 'minimal', 'low', 'medium' or 'high'",
}


@functools.cache
def _validator() -> TypeAdapter[_CheckedSettings]:
    # Built on first use and kept: building costs milliseconds, checking a few keys microseconds.
    from pydantic import TypeAdapter

    return TypeAdapter(_CheckedSettings)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


SERVER_STATE_FIELDS = ("previous_response_id", "conversation")
"""``extra_body`` fields that continue state the server stored (the Responses API)."""


def depends_on_server_state(settings: Mapping[str, Any]) -> bool:
    """Whether a call continues state one server holds (``previous_response_id``, a
    conversation): it can't be replayed against another model, nor retried once that server may
    have accepted it."""
    extra = settings.get("extra_body")
    return isinstance(extra, Mapping) and any(extra.get(field) for field in SERVER_STATE_FIELDS)


def check_settings(settings: Mapping[str, Any]) -> None:
    """Refuse unknown settings and values a server would reject, before anything is sent.

    A `ConfigurationError` names the setting and what it accepts; it is never retried and never
    counts against a circuit breaker.
    """
    if not settings:
        return
    settings = _with_plain_tools(settings)
    unknown = sorted(set(settings) - _KNOWN)
    if unknown:
        import difflib

        guesses = [difflib.get_close_matches(key, _KNOWN, n=1) for key in unknown]
        hint = "".join(
            f" Did you mean {guess[0]!r} for {key!r}?" for key, guess in zip(unknown, guesses, strict=True) if guess
        )
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(map(repr, unknown))}.{hint} Known settings are "
            f"{', '.join(sorted(_KNOWN))}. Pass provider-specific fields in extra_body={{...}}"
        )
    try:
        _validator().validate_python(settings)
    except ValidationError as error:
        key = str(error.errors(include_url=False)[0]["loc"][0])
        shown = "" if key == "extra_headers" else f", got {_shown(settings[key])}"
        raise ConfigurationError(f"setting {key!r} must be {_ACCEPTED[key]}{shown}") from None
    if "timeout" in settings:
        check_timeout("setting 'timeout'", settings["timeout"])
    if "extra_headers" in settings:
        check_headers("extra_headers", settings["extra_headers"])


def _with_plain_tools(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """`settings` with functions and model classes in ``tools`` described as `Tool`s, and a
    ``tool_choice`` given as a tool object replaced by its name: the form the codecs encode."""
    if "tools" not in settings and "tool_choice" not in settings:
        return settings
    from ._tools import as_tools, tool_choice_name

    plain = dict(settings)
    if "tools" in plain:
        plain["tools"] = as_tools(plain["tools"])
    if "tool_choice" in plain:
        plain["tool_choice"] = tool_choice_name(plain["tool_choice"])
    return plain


def _check_choice_names_a_tool(settings: Mapping[str, Any]) -> None:
    choice = settings.get("tool_choice")
    tools = settings.get("tools")
    if not tools or not isinstance(choice, str) or choice in ("auto", "none", "required"):
        return
    from ._tools import tool_names

    names = tool_names(tools)
    if choice not in names:
        raise ConfigurationError(
            f"setting 'tool_choice' names {choice!r}, which is not one of the tools given "
            f"({', '.join(map(repr, names))}); use one of those, or 'auto', 'none' or 'required'"
        )


def check_timeout(option: str, timeout: Any) -> None:
    """A timeout in seconds (> 0) or an ``httpx.Timeout``, or a `ConfigurationError` naming `option`."""
    import httpx

    if isinstance(timeout, httpx.Timeout):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError(f"{option} must be {_ACCEPTED['timeout']}, got {_shown(timeout)}")


# RFC 9110: a header name is a token; a value is visible ASCII, spaces and tabs (httpx sends
# ASCII, and a line break would split the request).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_headers(option: str, headers: Any) -> None:
    """Header names and values that can be sent, or a `ConfigurationError` naming `option`. A
    value is never echoed: headers carry credentials."""
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{option} must be {_ACCEPTED['extra_headers']}, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(
                f"{option}: {_shown(name)} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            what = "a string" if not isinstance(value, str) else "printable ASCII on one line"
            raise ConfigurationError(
                f"{option}: the value of header {name!r} must be {what}; encode other text "
                "(e.g. percent-encoding) before passing it"
            )


def merge_settings(defaults: Mapping[str, Any] | None, call: Mapping[str, Any]) -> Settings:
    """Model defaults overlaid with the call's settings, both checked by `check_settings`.

    ``extra_body`` and ``extra_headers`` merge one level deep so a call can add a field without
    dropping the model's. The defaults were checked when the model was built (the first call
    here, with no defaults), so each call checks only its own settings.
    """
    check_settings(call)
    if defaults and not _KNOWN.issuperset(defaults):
        check_settings(defaults)
    merged: dict[str, Any] = dict(defaults or {})
    for key, value in _with_plain_tools(call).items():
        if key in ("extra_body", "extra_headers") and key in merged:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    _check_choice_names_a_tool(merged)
    return merged  # type: ignore[return-value]
