"""Structured output: ``chat(..., output=SomeType)`` returns a validated object on ``response.output``.

How the schema reaches the model depends on what the model's profile says it enforces:

- ``native``: the backend constrains generation to the schema (OpenAI/Azure ``json_schema``,
  Ollama ``format``, llama.cpp's schema grammar, the in-process model's grammar);
- ``tool``: a forced call of one tool whose parameters are the schema (backends with tool calling
  but no schema constraint);
- ``json``: JSON mode, with the schema in the instructions;
- ``prompt``: only the instructions (a backend that enforces nothing).

Every strategy validates: a backend that accepted a constraint without enforcing it fails closed.
A failed validation may be shown to the model for a bounded number of re-asks (``output_retries``);
usage and cost then cover every attempt.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _observe
from ._error_tree import ProviderError, UnsupportedCapabilityError
from ._events import PartialOutput, StreamEvent, TextDelta, ToolCallDelta
from ._exceptions import ConfigurationError
from ._messages import Message, MessagesInput, assistant, to_messages, tool_result, user
from ._output_schema import OutputSchema, Problem, json_in_text, output_schema
from ._response import ChatResponse, Usage, summed_cost, summed_usage
from ._settings import Tool, check_settings

if TYPE_CHECKING:
    from ._profile import ModelProfile

__all__ = [
    "OUTPUT_SETTINGS",
    "OUTPUT_TOOL_NAME",
    "OutputError",
    "OutputPlan",
    "OutputRefusedError",
    "OutputStrategy",
    "OutputValidationError",
    "achat_with_output",
    "chat_with_output",
    "choose_strategy",
    "output_achat",
    "output_chat",
    "output_plan",
    "output_stream",
    "plan_output",
]

OutputStrategy = Literal["native", "tool", "json", "prompt"]
OUTPUT_TOOL_NAME = "final_result"
OUTPUT_SETTINGS = ("output", "output_strategy", "output_retries")
_STRATEGIES: tuple[OutputStrategy, ...] = ("native", "tool", "json", "prompt")
_UNENFORCED_HINT = (
    "the backend accepted the JSON schema but did not enforce it (some servers ignore constraint fields they "
    "don't know, with HTTP 200); "
)


class OutputError(ProviderError):
    """Structured output (``output=...``) could not be produced. `usage` and `cost` cover every
    attempt made for it, re-asks included."""

    def __init__(self, message: str, *, usage: Usage | None = None, cost: Decimal | None = None, **context: Any):
        super().__init__(message, **context)
        self.usage = usage
        self.cost = cost


class OutputValidationError(OutputError):
    """The model's answer is not a valid output: not JSON, or values that don't fit the type.

    `raw_text` is what the model sent (the tool call's arguments for the ``tool`` strategy);
    `errors` the validation problems; `strategy` how the schema was sent; `enforced` whether the
    backend claimed to enforce it (then the answer proves it did not).
    """

    def __init__(
        self,
        message: str,
        *,
        raw_text: str,
        strategy: OutputStrategy,
        errors: Sequence[str] = (),
        enforced: bool = False,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.raw_text = raw_text
        self.strategy = strategy
        self.errors = list(errors)
        self.enforced = enforced


class OutputRefusedError(OutputError):
    """The model refused to answer (OpenAI's ``refusal``); `refusal` is its explanation."""

    def __init__(self, message: str, *, refusal: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.refusal = refusal


def choose_strategy(
    profile: ModelProfile,
    requested: OutputStrategy | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> OutputStrategy:
    """The strongest strategy the profile supports, or `requested` if the profile allows it."""
    supported = {
        "native": profile.json_schema,
        "tool": profile.tools and bool({"function", "required"} & profile.tool_choice),
        "json": profile.json_mode,
        "prompt": True,
    }
    if requested is not None:
        if not supported[requested]:
            raise UnsupportedCapabilityError(
                f"output_strategy={requested!r} needs what profile {profile.family!r} does not support; use one "
                f"of {', '.join(s for s in _STRATEGIES if supported[s])} or leave output_strategy unset",
                capability="output_strategy",
                param="output_strategy",
                provider=provider,
                model=model,
            )
        return requested
    return next(strategy for strategy in _STRATEGIES if supported[strategy])


def _instructions(spec: OutputSchema) -> str:
    return (
        "Answer with one JSON value that matches this JSON schema, and nothing else (no prose, no code fence):\n"
        + json.dumps(spec.schema, ensure_ascii=False, separators=(",", ":"))
    )


def _with_instructions(messages: list[Message], text: str) -> list[Message]:
    """The schema instructions in the system message (added first, or appended to a text one)."""
    for position, message in enumerate(messages):
        if message.role in ("system", "developer"):
            if isinstance(message.content, str):
                updated = message.model_copy(update={"content": f"{message.content}\n\n{text}"})
                return [*messages[:position], updated, *messages[position + 1 :]]
            break
    return [Message(role="system", content=text), *messages]


@dataclass
class OutputPlan:
    """How one call asks for and checks its structured output."""

    spec: OutputSchema
    strategy: OutputStrategy
    retries: int
    provider: str
    model: str
    user_tools: bool = False
    responses: list[ChatResponse] = field(default_factory=list)

    # ------------------------------------------------------------------ the request

    def request_settings(self, settings: Mapping[str, Any], profile: ModelProfile) -> dict[str, Any]:
        """The call's settings with the output keys replaced by what this strategy sends."""
        sent = {key: value for key, value in settings.items() if key not in OUTPUT_SETTINGS}
        if self.strategy == "native":
            strict = self.spec.strict_schema
            wire: dict[str, Any] = {"name": self.spec.name, "schema": strict or self.spec.schema}
            if strict is not None:
                wire["strict"] = True
            sent["response_format"] = {"type": "json_schema", "json_schema": wire}
        elif self.strategy == "tool":
            output_tool = Tool(
                name=OUTPUT_TOOL_NAME,
                description=self.spec.description or "Give your final answer by calling this tool with it.",
                parameters=self.spec.strict_schema or self.spec.schema,
                strict=True if self.spec.strict_schema is not None else None,
            )
            sent["tools"] = [*sent.get("tools", ()), output_tool]
            if "tool_choice" not in sent:
                if not self.user_tools and "function" in profile.tool_choice:
                    sent["tool_choice"] = OUTPUT_TOOL_NAME
                elif "required" in profile.tool_choice:
                    sent["tool_choice"] = "required"
        elif self.strategy == "json":
            sent["response_format"] = "json"
        return sent

    def request(
        self, messages: MessagesInput, settings: Mapping[str, Any], profile: ModelProfile
    ) -> tuple[list[Message], dict[str, Any]]:
        """The messages and settings one request of this plan sends."""
        return self.request_messages(to_messages(messages)), self.request_settings(settings, profile)

    def request_messages(self, messages: list[Message]) -> list[Message]:
        if self.strategy in ("json", "prompt"):
            return _with_instructions(messages, _instructions(self.spec))
        return messages

    # ------------------------------------------------------------------ the answer

    def finish(self, response: ChatResponse) -> ChatResponse:
        """The response with its validated `output` (usage and cost summed over the attempts);
        raises `OutputRefusedError` or `OutputValidationError`. A turn that only calls the
        caller's own tools has no output yet and is returned as it is."""
        self.responses.append(response)
        if response.refusal:
            raise OutputRefusedError(
                f"{self.provider}:{self.model} refused to answer: {response.refusal}",
                refusal=response.refusal,
                **self._context(response),
            )
        raw, value, problem = self._answer(response)
        if raw is None:
            return self._total(response, None)
        if problem is None:
            value, problem = self.spec.check(value)
        if problem is None:
            return self._total(response, value)
        raise self._invalid(response, raw, problem)

    def _answer(self, response: ChatResponse) -> tuple[str | None, Any, Problem | None]:
        """(raw text, parsed JSON, problem); raw None: a tool turn with no output to check."""
        calls = response.tool_calls
        if self.strategy == "tool":
            mine = [call for call in calls if call.name == OUTPUT_TOOL_NAME]
            if mine:
                call = mine[0]
                if call.arguments_error is not None:
                    return call.raw_arguments, None, Problem(f"its arguments are not usable: {call.arguments_error}")
                return call.raw_arguments, call.arguments, None
        if calls and self.user_tools:
            return None, None, None
        if self.strategy == "tool" and not response.text.strip():
            return "", None, Problem(f"it did not call the {OUTPUT_TOOL_NAME} tool")
        value, problem = json_in_text(response.text)
        return response.text, value, problem

    def _invalid(self, response: ChatResponse, raw: str, problem: Problem) -> OutputValidationError:
        enforced = self.strategy == "native" and problem.parsed
        hint = _UNENFORCED_HINT if enforced else ""
        if response.finish_reason == "length":
            hint = "the answer was cut off by the token limit (finish_reason='length'): raise max_tokens; "
        elif response.content_filtered:
            hint = "a content filter cut the answer; "
        attempts = len(self.responses)
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        advice = "pass output_retries=1 to show the model its mistake" if self.retries == 0 else "check the prompt"
        return OutputValidationError(
            f"{self.provider}:{self.model} did not return a valid {self.spec.name}{tried} "
            f"(strategy {self.strategy!r}): {problem.summary}; {hint}{advice}",
            raw_text=raw,
            strategy=self.strategy,
            errors=problem.errors,
            enforced=enforced,
            **self._context(response),
        )

    def _context(self, response: ChatResponse) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "request_id": response.request_id,
            "usage": summed_usage(r.usage for r in self.responses),
            "cost": summed_cost(self.responses),
        }

    def _total(self, response: ChatResponse, value: Any) -> ChatResponse:
        update: dict[str, Any] = {"output": value}
        if len(self.responses) > 1:
            update["usage"] = summed_usage(r.usage for r in self.responses)
            update["cost"] = summed_cost(self.responses)
            update["attempts"] = [attempt for r in self.responses for attempt in r.attempts]
        return response.model_copy(update=update)

    def reask(self, response: ChatResponse, error: OutputValidationError) -> list[Message]:
        """The turns that show the model its invalid answer and ask again."""
        problems = "; ".join(error.errors) or error.message
        ours = [call for call in response.tool_calls if call.name == OUTPUT_TOOL_NAME]
        if ours:
            return [
                assistant(None, tool_calls=ours[:1]),
                tool_result(ours[0].id, f"Invalid: {problems}. Call {OUTPUT_TOOL_NAME} again with corrected values."),
            ]
        return [
            assistant(response.text or None),
            user(f"That answer is not valid: {problems}. Answer again with only the corrected JSON."),
        ]

    # ------------------------------------------------------------------ streams

    def tracker(self) -> OutputTracker:
        return OutputTracker(self)


class OutputTracker:
    """Follows a stream's text (or the output tool's arguments) and adds `PartialOutput` events
    each time the JSON so far determines more of the value."""

    def __init__(self, plan: OutputPlan) -> None:
        from ._partial_json import MISSING, PartialJSON  # only streams with output= need it

        self._missing = MISSING
        self.plan = plan
        self._json = PartialJSON()
        self._tool_index: int | None = None
        self._last: Any = MISSING

    def on_events(self, events: list[StreamEvent]) -> list[StreamEvent]:
        was_complete = self._json.complete
        grew = False
        for event in events:
            fragment = self._fragment(event)
            if fragment and self._json.feed(fragment):
                grew = True
        if not grew:
            return events
        value = self._json.value
        if value is self._missing or (self._json.complete and not was_complete and value == self._last):
            return events  # completing a value already shown is not growth (compared once per stream)
        self._last = value
        return [*events, PartialOutput(self.plan.spec.unwrap(value))]

    def _fragment(self, event: StreamEvent) -> str | None:
        if type(event) is TextDelta:
            return event.text
        if type(event) is ToolCallDelta:
            if event.name == OUTPUT_TOOL_NAME:
                self._tool_index = event.index
            if event.index == self._tool_index:
                return event.arguments
        return None

    def finish(self, response: ChatResponse) -> ChatResponse:
        return self.plan.finish(response)


# ---------------------------------------------------------------------------------- calls


def plan_output(settings: Mapping[str, Any], profile: ModelProfile, *, provider: str, model: str) -> OutputPlan | None:
    """The plan for a call's ``output=`` (None when it asks for none)."""
    check_settings({key: settings[key] for key in OUTPUT_SETTINGS if key in settings})
    target = settings.get("output")
    if target is None:
        for key in ("output_strategy", "output_retries"):
            if key in settings:
                raise ConfigurationError(f"setting {key!r} only applies with output=...; pass the output type too")
        return None
    if settings.get("response_format") not in (None, "text"):
        raise ConfigurationError(
            "pass either output= (modelmix validates the answer) or response_format= (you parse it), not both"
        )
    retries = settings.get("output_retries", 0)
    strategy = choose_strategy(profile, settings.get("output_strategy"), provider=provider, model=model)
    return OutputPlan(
        spec=output_schema(target),
        strategy=strategy,
        retries=retries,
        provider=provider,
        model=model,
        user_tools=bool(settings.get("tools")),
    )


def output_plan(settings: Mapping[str, Any], model: Any) -> OutputPlan | None:
    """`plan_output` for a call to `model` (its default settings count); None, cheaply, for the
    calls that ask for no structured output."""
    defaults = model.settings
    if _OUTPUT_KEYS.isdisjoint(settings) and (not defaults or _OUTPUT_KEYS.isdisjoint(defaults)):
        return None
    merged = {**defaults, **settings} if defaults else settings
    return plan_output(merged, model.profile, provider=model.provider, model=model.name)


_OUTPUT_KEYS = frozenset(OUTPUT_SETTINGS)
_F = TypeVar("_F", bound=Callable[..., Any])


def output_chat(method: _F) -> _F:
    """Gives a model's ``chat`` the ``output=`` setting: the model's own method sends each attempt."""

    @functools.wraps(method)
    def chat(self: Any, messages: MessagesInput, **settings: Any) -> ChatResponse:
        # Every concrete model's entry points pass here, so this is where hooks see an attempt;
        # without hooks the check is the only cost.
        if _observe.ACTIVE:
            return _observe.attempt_chat(self, messages, settings, lambda: send(self, messages, settings))
        plan = output_plan(settings, self)
        if plan is None:
            return method(self, messages, **settings)  # type: ignore[no-any-return]
        return chat_with_output(plan, self.profile, messages, settings, lambda m, s: method(self, m, **s))

    def send(self: Any, messages: MessagesInput, settings: dict[str, Any]) -> ChatResponse:
        plan = output_plan(settings, self)
        if plan is None:
            return method(self, messages, **settings)  # type: ignore[no-any-return]
        return chat_with_output(plan, self.profile, messages, settings, lambda m, s: method(self, m, **s))

    return chat  # type: ignore[return-value]


def output_achat(method: _F) -> _F:
    """`output_chat` for ``achat``."""

    @functools.wraps(method)
    async def achat(self: Any, messages: MessagesInput, **settings: Any) -> ChatResponse:
        if _observe.ACTIVE:
            return await _observe.aattempt_chat(self, messages, settings, lambda: send(self, messages, settings))
        plan = output_plan(settings, self)
        if plan is None:
            return await method(self, messages, **settings)  # type: ignore[no-any-return]
        return await achat_with_output(plan, self.profile, messages, settings, lambda m, s: method(self, m, **s))

    async def send(self: Any, messages: MessagesInput, settings: dict[str, Any]) -> ChatResponse:
        plan = output_plan(settings, self)
        if plan is None:
            return await method(self, messages, **settings)  # type: ignore[no-any-return]
        return await achat_with_output(plan, self.profile, messages, settings, lambda m, s: method(self, m, **s))

    return achat  # type: ignore[return-value]


def output_stream(method: _F) -> _F:
    """Gives ``stream`` / ``astream`` the ``output=`` setting: `PartialOutput` events as the JSON
    grows, and the validated object on the final response (no re-asks: the text was shown)."""

    @functools.wraps(method)
    def stream(self: Any, messages: MessagesInput, **settings: Any) -> Any:
        plan = output_plan(settings, self)
        if plan is None:
            opened = method(self, messages, **settings)
        else:
            sent_messages, sent_settings = plan.request(messages, settings, self.profile)
            opened = method(self, sent_messages, **sent_settings)
            opened._follow_output(plan.tracker())
        if _observe.ACTIVE:
            _observe.observe_leaf_stream(opened, self, messages, settings)
        return opened

    return stream  # type: ignore[return-value]


Send = Callable[[list[Message], dict[str, Any]], ChatResponse]
ASend = Callable[[list[Message], dict[str, Any]], Awaitable[ChatResponse]]


Request = tuple[list[Message], dict[str, Any]]
"""The messages and settings of one request."""


def _conversation(
    plan: OutputPlan, profile: ModelProfile, messages: MessagesInput, settings: Mapping[str, Any]
) -> Generator[Request, ChatResponse, ChatResponse]:
    """The re-ask procedure without I/O: yields each request, is sent each answer, returns the
    validated response (or raises the last validation error)."""
    conversation = to_messages(messages)
    sent = plan.request_settings(settings, profile)
    while True:
        response = yield plan.request_messages(conversation), sent
        try:
            return plan.finish(response)
        except OutputValidationError as error:
            if len(plan.responses) > plan.retries:
                raise
            conversation = [*conversation, *plan.reask(response, error)]


def chat_with_output(
    plan: OutputPlan, profile: ModelProfile, messages: MessagesInput, settings: Mapping[str, Any], send: Send
) -> ChatResponse:
    """Call `send` until the answer validates or the re-asks run out."""
    steps = _conversation(plan, profile, messages, settings)
    request = next(steps)
    while True:
        try:
            request = steps.send(send(*request))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def achat_with_output(
    plan: OutputPlan, profile: ModelProfile, messages: MessagesInput, settings: Mapping[str, Any], send: ASend
) -> ChatResponse:
    """Async `chat_with_output`."""
    steps = _conversation(plan, profile, messages, settings)
    request = next(steps)
    while True:
        try:
            request = steps.send(await send(*request))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
