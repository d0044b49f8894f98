"""The tool loop: `run_tools` and `arun_tools` call a model, run the tools it asks for, feed the
results back and call again until it answers in text or the step limit is reached.

A step is one call of the model plus the tools that answer asked for. A tool that raises, or a
call whose arguments do not fit (`ToolArgumentsError`, including a tool that was never offered),
becomes an error result the model reads in the next step; the loop itself only raises for the
caller's mistakes, the model's own failures and `ToolLoopLimitError`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
import anyio.to_thread
import pydantic_core
from pydantic import BaseModel
from typing_extensions import Unpack

from ._error_tree import ModelMixError
from ._exceptions import ConfigurationError
from ._messages import Message, MessagesInput, ToolCall, to_messages, tool_result
from ._model import Model
from ._response import ChatResponse, Usage, summed_cost, summed_usage
from ._settings import Settings, Tool
from ._sync_bridge import run_sync
from ._tools import ToolLike, as_tools, parse_tool_call

__all__ = ["ToolLoopLimitError", "ToolOutcome", "ToolRun", "ToolStep", "arun_tools", "run_tools"]


@dataclass(frozen=True)
class ToolOutcome:
    """What running one tool call gave: the function's return value, or the error that was sent
    back to the model instead. `content` is the text the model received as the tool's result."""

    call: ToolCall
    content: str
    value: Any = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ToolStep:
    """One call of the model and the tool calls of its answer, with their outcomes in call order
    (empty for the final answer, and for a step the limit stopped before its tools ran)."""

    response: ChatResponse
    outcomes: list[ToolOutcome] = field(default_factory=list)

    @property
    def calls(self) -> list[ToolCall]:
        return self.response.tool_calls


class _StepTotals:
    """`usage` and `cost` summed over `steps`, for a finished run and a run stopped at its limit."""

    steps: list[ToolStep]

    @property
    def usage(self) -> Usage | None:
        """Token usage summed over the steps that reported it (None when none did)."""
        return summed_usage(step.response.usage for step in self.steps)

    @property
    def cost(self) -> Decimal | None:
        """USD cost summed over the steps, exactly: None when none reported usage, or when a step
        reported usage its model has no price for (a sum without it would understate)."""
        return summed_cost(step.response for step in self.steps)


@dataclass(frozen=True)
class ToolRun(_StepTotals):
    """The result of a tool loop: the final answer, every step, the whole conversation (your
    messages, each assistant turn and each tool result, then the final answer) and the usage and
    cost summed over the steps that reported them (None when none did)."""

    response: ChatResponse
    steps: list[ToolStep]
    messages: list[Message]

    @property
    def text(self) -> str:
        return self.response.text


class ToolLoopLimitError(_StepTotals, ModelMixError):
    """The model was still calling tools after `max_steps` calls. `steps` and `messages` hold the
    work so far (the tools of the last step were not run); `usage` and `cost` are summed over it."""

    def __init__(self, message: str, *, steps: Sequence[ToolStep], messages: Sequence[Message]) -> None:
        super().__init__(message)
        self.steps = list(steps)
        self.messages = list(messages)


# ------------------------------------------------------------------------------ one tool call


@dataclass(frozen=True)
class _Prepared:
    """A call ready to run (`function` and `arguments`) or already decided (`outcome`)."""

    call: ToolCall
    function: Callable[..., Any] | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    outcome: ToolOutcome | None = None


def _prepare(call: ToolCall, tools: Sequence[ToolLike], offered: dict[str, Tool | Any]) -> _Prepared:
    try:
        arguments = parse_tool_call(call, tools)
    except ModelMixError as error:  # ToolArgumentsError: broken JSON, wrong values, unknown tool
        return _Prepared(call, outcome=_failed(call, error))
    entry = offered.get(call.name)
    function = entry.function if isinstance(entry, Tool) else None
    if function is None:
        # A pydantic model class, an mm.Tool or a dict describes a tool but has nothing to run.
        nothing_to_run = ConfigurationError(
            f"tool {call.name!r} has no Python function to run; give the function itself in tools=[...]"
        )
        return _Prepared(call, outcome=_failed(call, nothing_to_run))
    return _Prepared(call, function=function, arguments=dict(arguments))


def _failed(call: ToolCall, error: Exception) -> ToolOutcome:
    message = error.message if isinstance(error, ModelMixError) else str(error)
    return ToolOutcome(call=call, content=f"error: {type(error).__name__}: {message}", error=error)


def _succeeded(call: ToolCall, value: Any) -> ToolOutcome:
    return ToolOutcome(call=call, content=_as_text(value), value=value)


def _as_text(value: Any) -> str:
    """A tool's return value as the text sent to the model: strings as they are, anything else
    as JSON (pydantic models, dataclasses, dates...), falling back to ``str`` for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return pydantic_core.to_json(value, fallback=str).decode("utf-8")


def _run_sync(prepared: _Prepared) -> ToolOutcome:
    if prepared.outcome is not None:
        return prepared.outcome
    assert prepared.function is not None
    try:
        value = prepared.function(**prepared.arguments)
        if inspect.isawaitable(value):
            value = run_sync(value, thread_name="modelmix-tool")
    except Exception as error:  # the model reads what went wrong; cancellation still propagates
        return _failed(prepared.call, error)
    return _succeeded(prepared.call, value)


async def _run_async(prepared: _Prepared) -> ToolOutcome:
    if prepared.outcome is not None:
        return prepared.outcome
    assert prepared.function is not None
    try:
        if inspect.iscoroutinefunction(prepared.function):
            value = await prepared.function(**prepared.arguments)
        else:
            # A plain function may block (files, HTTP): in a worker thread, not on the event loop.
            value = await anyio.to_thread.run_sync(functools.partial(prepared.function, **prepared.arguments))
            if inspect.isawaitable(value):
                value = await value
    except Exception as error:
        return _failed(prepared.call, error)
    return _succeeded(prepared.call, value)


async def _run_concurrently(prepared: Sequence[_Prepared]) -> list[ToolOutcome]:
    """Every call of one step at once; the outcomes in the order the model made the calls."""
    outcomes: list[ToolOutcome | None] = [None] * len(prepared)

    async def run_one(index: int, item: _Prepared) -> None:
        outcomes[index] = await _run_async(item)

    async with anyio.create_task_group() as group:
        for index, item in enumerate(prepared):
            group.start_soon(run_one, index, item)
    return [outcome for outcome in outcomes if outcome is not None]


# ------------------------------------------------------------------------------------ the loop


class _Loop:
    """The state both loops share: the conversation so far and the steps taken."""

    def __init__(self, messages: MessagesInput, tools: Sequence[ToolLike], max_steps: int) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigurationError(f"max_steps must be a whole number of model calls, 1 or more; got {max_steps!r}")
        entries = as_tools(tools)
        if not entries:
            raise ConfigurationError("tools is empty: give run_tools at least one tool to offer the model")
        self.tools = list(tools)
        self.offered = {(entry.name if isinstance(entry, Tool) else _dict_name(entry)): entry for entry in entries}
        self.max_steps = max_steps
        self.messages = to_messages(messages)
        self.steps: list[ToolStep] = []

    def prepare(self, response: ChatResponse) -> list[_Prepared] | None:
        """The calls to run for this answer; None when it is the final answer."""
        # A structured answer (output=) may arrive as a call of the output tool: it is final too.
        if not response.tool_calls or response.output is not None:
            self.steps.append(ToolStep(response))
            self.messages.append(response.message)
            return None
        if len(self.steps) + 1 >= self.max_steps:
            self.steps.append(ToolStep(response))
            self.messages.append(response.message)
            raise ToolLoopLimitError(
                f"the model was still calling tools ({', '.join(call.name for call in response.tool_calls)}) "
                f"after max_steps={self.max_steps} calls; raise max_steps or change the prompt",
                steps=self.steps,
                messages=self.messages,
            )
        return [_prepare(call, self.tools, self.offered) for call in response.tool_calls]

    def record(self, response: ChatResponse, outcomes: list[ToolOutcome]) -> None:
        self.steps.append(ToolStep(response, outcomes))
        self.messages.append(response.message)
        self.messages.extend(tool_result(outcome.call.id, outcome.content) for outcome in outcomes)

    def settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings of the next call. A `tool_choice` that forces a call (``"required"`` or
        one tool) holds for the first call only: forced on every call, the model could never answer."""
        sent = dict(settings)
        if self.steps and sent.get("tool_choice", "auto") not in ("auto", "none"):
            del sent["tool_choice"]
        return sent

    def result(self) -> ToolRun:
        return ToolRun(response=self.steps[-1].response, steps=list(self.steps), messages=list(self.messages))


def _dict_name(entry: Mapping[str, Any]) -> str:
    function = entry.get("function")
    return str((function if isinstance(function, Mapping) else entry).get("name", ""))


# `tools` is a parameter of its own (the loop needs the functions), so Settings' key of the same
# name never reaches **settings; mypy flags the overlap all the same.
def run_tools(  # type: ignore[misc]
    model: Model,
    messages: MessagesInput,
    tools: Sequence[ToolLike],
    *,
    max_steps: int = 8,
    **settings: Unpack[Settings],
) -> ToolRun:
    """Call `model` with `tools`, run the tools each answer asks for and send their results back,
    until the model answers without calling a tool. Calls of one step run one after another (use
    `arun_tools` to run them concurrently).

    `max_steps` bounds the calls of the model: when its last answer still calls tools,
    `ToolLoopLimitError` is raised with the steps so far. Other settings go to every call, except
    a `tool_choice` that forces a call (``"required"`` or a tool): it holds for the first call only.
    With ``output=`` the final answer's validated object is on ``run.response.output``.
    """
    loop = _Loop(messages, tools, max_steps)
    while True:
        response = model.chat(loop.messages, tools=loop.tools, **loop.settings(settings))
        prepared = loop.prepare(response)
        if prepared is None:
            return loop.result()
        loop.record(response, [_run_sync(item) for item in prepared])


async def arun_tools(  # type: ignore[misc]
    model: Model,
    messages: MessagesInput,
    tools: Sequence[ToolLike],
    *,
    max_steps: int = 8,
    **settings: Unpack[Settings],
) -> ToolRun:
    """`run_tools` for async code: the calls of one step run concurrently (async functions on the
    event loop, plain ones in worker threads), their results sent back in call order."""
    loop = _Loop(messages, tools, max_steps)
    while True:
        response = await model.achat(loop.messages, tools=loop.tools, **loop.settings(settings))
        prepared = loop.prepare(response)
        if prepared is None:
            return loop.result()
        loop.record(response, await _run_concurrently(prepared))
