"""Thin drivers that carry out a `CallPlan`'s actions: the only resilience code that calls a model,
sleeps or waits on a timer. One sync and one async loop serve chat and streams alike; what
differs is the attempt (a call, or opening a stream up to its commit point)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
from typing_extensions import Unpack

from .. import _observe
from .._call_deadline import headers_within
from .._events import StreamEvent
from .._exceptions import TransportError
from .._messages import MessagesInput
from .._model import Model
from .._response import ChatResponse
from .._settings import Settings, depends_on_server_state
from .._streaming import AsyncStream, Stream
from ._clock import AttemptScope
from ._planner import AskBreaker, Call, CallPlan, GiveUp, Sleep
from ._read_timer import AttemptTimer, read_timer_available
from ._streams import (
    Connected,
    GuardedAsyncStream,
    GuardedStream,
    ReadLimit,
    aclose_quietly,
    apull_to_commit,
    first_token_limit,
    pull_to_commit,
    stream_attempts,
)

__all__ = ["PlannedModel", "achat", "aopen_stream", "chat", "open_stream"]

_CLOCK_SLACK = 0.01
"""httpx's timer and ours don't start at the same instant."""

T = TypeVar("T")
R = TypeVar("R")


def _no_limit(call: Call) -> float:
    return math.inf


def _run(
    plan: CallPlan,
    attempt: Callable[[Call], T],
    done: Callable[[Call, T], R],
    read_limit: Callable[[Call], float] = _no_limit,
) -> R:
    while True:
        action = plan.next()
        if isinstance(action, Sleep):
            if _observe.ACTIVE:
                _observe.retry_wait(action.seconds)
            plan.clock.sleep(action.seconds)
            continue
        if isinstance(action, GiveUp):
            raise action.error
        if isinstance(action, AskBreaker):
            plan.breaker_said(action.breaker.admit(action.now, ignore_cooldown=action.ignore_cooldown))
            continue
        # The deadline reaches the HTTP layer on its own channel, never through `timeout`.
        scope = AttemptScope(action.deadline, min(action.bound, read_limit(action)))
        try:
            if not _observe.ACTIVE:
                result = attempt(action)
            else:
                result = _observe.run_in_slot(*_slot(plan, action), attempt, action)
        except BaseException as exc:
            scope.leave()
            plan.failed(action, exc)
            continue
        scope.leave()
        return done(action, result)


async def _arun(plan: CallPlan, attempt: Callable[[Call], Awaitable[T]], done: Callable[[Call, T], R]) -> R:
    while True:
        action = plan.next()
        if isinstance(action, Sleep):
            if _observe.ACTIVE:
                _observe.retry_wait(action.seconds)
            await plan.clock.asleep(action.seconds)
            continue
        if isinstance(action, GiveUp):
            raise action.error
        if isinstance(action, AskBreaker):
            plan.breaker_said(await action.breaker.aadmit(action.now, ignore_cooldown=action.ignore_cooldown))
            continue
        scope = AttemptScope(action.deadline, action.bound)
        try:
            result: T | None = None
            if read_timer_available():
                timer = AttemptTimer(action.timer)
                try:
                    result = await _started(plan, action, attempt)
                except asyncio.CancelledError:
                    if not timer.took_back():
                        raise
                finally:
                    timer.close()
            else:
                with anyio.move_on_after(action.timer):
                    result = await _started(plan, action, attempt)
            if result is None:
                raise plan.attempt_timed_out(action)
        except BaseException as exc:
            scope.leave()
            plan.failed(action, exc)
            continue
        scope.leave()
        return done(action, result)


def _started(plan: CallPlan, call: Call, attempt: Callable[[Call], Awaitable[T]]) -> Awaitable[T]:
    """The attempt's awaitable, inside its hooks' slot when hooks are on (a plain function, so no
    coroutine layer is added to every await of the attempt)."""
    if not _observe.ACTIVE:
        return attempt(call)
    return _observe.arun_in_slot(*_slot(plan, call), attempt, call)


def _slot(plan: CallPlan, call: Call) -> tuple[int | None, int]:
    """Where an attempt sits in its call, for hooks: (chain position or None, retry number)."""
    if len(plan.legs) == 1:
        return None, call.retry_no
    return next(i for i, leg in enumerate(plan.legs) if leg is call.leg), call.retry_no


def chat(plan: CallPlan, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
    plan.stateful = depends_on_server_state(settings)
    return _run(plan, lambda call: call.leg.model.chat(messages, **settings), plan.succeeded)


async def achat(plan: CallPlan, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
    plan.stateful = depends_on_server_state(settings)
    # The lambda hands back the model's own coroutine: no extra coroutine layer per attempt.
    return await _arun(plan, lambda call: call.leg.model.achat(messages, **settings), plan.succeeded)


Opened = tuple[Stream | AsyncStream, Any, list[StreamEvent]]


def _connected(plan: CallPlan, call: Call, opened: Opened) -> Connected:
    stream, iterator, buffered = opened
    on_done = plan.committed(call, stream_attempts(stream))
    idle = call.leg.policy.idle_timeout
    return Connected(stream, iterator, buffered, plan.attempts, call.deadline, idle_timeout=idle, on_done=on_done)


def open_stream(
    plan: CallPlan, messages: MessagesInput, settings: Mapping[str, Any], inherited: list[ReadLimit]
) -> Connected:
    """Open a stream up to its commit point, retrying and falling back as the plan says.
    `inherited`: read limits an enclosing wrapper put on this stream, applied to every attempt."""
    plan.stateful = depends_on_server_state(settings)

    def attempt(call: Call) -> Opened:
        stream = call.leg.model.stream(messages, **settings)
        for limit in inherited:
            stream._limit_reads(limit)
        # The same limits async puts on the attempt with cancel scopes: its first token, then
        # the attempt's share of the deadline (sync reads are interrupted at them by a watch).
        stream._limit_reads(first_token_limit(call, plan))
        first_token = min(call.first_token, call.timer)
        started = time.monotonic()
        try:
            with headers_within(first_token):
                iterator, buffered = pull_to_commit(stream)
        except TransportError as exc:
            stream.close()
            if exc.kind == "read_timeout" and time.monotonic() - started >= first_token - _CLOCK_SLACK:
                # The wait for the headers was cut to the first-token limit: that is what fired.
                raise plan.no_first_token(call) from exc
            raise
        except BaseException:
            stream.close()
            raise
        return stream, iterator, buffered

    def read_limit(call: Call) -> float:
        # Sync code can't interrupt a blocked read: the first-token and idle limits bound each
        # HTTP read instead, alongside the deadline.
        policy = call.leg.policy
        return max((t for t in (policy.ttft_timeout, policy.idle_timeout) if t is not None), default=math.inf)

    return _run(plan, attempt, lambda call, opened: _connected(plan, call, opened), read_limit)


async def aopen_stream(plan: CallPlan, messages: MessagesInput, settings: Mapping[str, Any]) -> Connected:
    plan.stateful = depends_on_server_state(settings)

    async def attempt(call: Call) -> Opened:
        stream = call.leg.model.astream(messages, **settings)
        try:
            pulled = await apull_to_commit(stream, min(call.first_token, call.timer))
            if pulled is None:
                raise plan.no_first_token(call)
        except BaseException:
            await aclose_quietly(stream)
            raise
        return stream, *pulled

    return await _arun(plan, attempt, lambda call, opened: _connected(plan, call, opened))


class PlannedModel(Model):
    """A model whose four calls each run one `CallPlan` (a retrying model, a fallback chain)."""

    provider: str
    name: str

    def _plan(self, messages: MessagesInput, *, in_async: bool, streaming: bool = False) -> CallPlan:
        raise NotImplementedError

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        if _observe.ACTIVE:
            return _observe.observe_chat(
                self, messages, settings, lambda: chat(self._plan(messages, in_async=False), messages, settings)
            )
        return chat(self._plan(messages, in_async=False), messages, settings)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        if _observe.ACTIVE:
            return await _observe.aobserve_chat(
                self, messages, settings, lambda: achat(self._plan(messages, in_async=True), messages, settings)
            )
        return await achat(self._plan(messages, in_async=True), messages, settings)

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        def connect() -> Connected:
            plan = self._plan(messages, in_async=False, streaming=True)
            return open_stream(plan, messages, settings, guarded.inherited)

        observed = _observe.observe_stream_call(self, messages, settings, connect) if _observe.ACTIVE else connect
        guarded = GuardedStream(observed, provider=self.provider, model=self.name)
        return guarded

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def connect() -> Connected:
            return await aopen_stream(self._plan(messages, in_async=True, streaming=True), messages, settings)

        observed = _observe.aobserve_stream_call(self, messages, settings, connect) if _observe.ACTIVE else connect
        return GuardedAsyncStream(observed, provider=self.provider, model=self.name)
