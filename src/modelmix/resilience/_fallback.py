"""`FallbackModel`: try models in order within one deadline, moving on per the fault matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
from typing_extensions import Unpack

from .._exceptions import (
    AllModelsFailedError,
    ConfigurationError,
    ContextLengthExceededError,
    DeadlineExceededError,
    ModelMixError,
)
from .._messages import MessagesInput
from .._model import Model
from .._response import Attempt, ChatResponse
from .._settings import Settings
from .._streaming import AsyncStream, Stream
from ._attempts import attempt_record, logger
from ._breaker import BreakerConfig, CircuitBreaker
from ._clock import SYSTEM_CLOCK, Clock, Deadline, effective_deadline, using_deadline
from ._endpoints import EndpointRegistry, registry
from ._faults import fault_of
from ._retrying import ResilientModel, circuit_breaker
from ._streams import (
    Connected,
    GuardedAsyncStream,
    GuardedStream,
    _deadline_error,
    aclose_quietly,
    apull_to_commit,
    pull_to_commit,
    stream_attempts,
)

__all__ = ["FallbackModel", "fallback", "should_fall_back"]

FallbackPredicate = Callable[[ModelMixError], "bool | None"]
"""Decides whether an error moves the chain on: True/False, or None for the default rule."""


def should_fall_back(error: BaseException, *, on_content_filter: bool = False) -> bool:
    """The default rule, read from the fault table: which failures move the chain to the next model.

    A context-window overflow moves on only to models with a larger window (the chain checks);
    a rejected prompt only with ``on_content_filter=True``.
    """
    rule = fault_of(error).fall_back
    return rule in ("yes", "larger_window") or (rule == "opt_in" and on_content_filter)


class FallbackModel(Model):
    """Models tried in order; the first answer wins. See `fallback`."""

    provider = "fallback"

    def __init__(
        self,
        models: Sequence[Model],
        *,
        deadline: float | None = 600.0,
        min_attempt_time: float = 1.0,
        fall_back_on: FallbackPredicate | None = None,
        fallback_on_content_filter: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not models:
            raise ConfigurationError("fallback() needs at least one model")
        self.models: list[Model] = list(models)
        self.name = ",".join(f"{m.provider}:{m.name}" for m in self.models)
        self.settings = {}
        self.deadline = deadline
        self.min_attempt_time = min_attempt_time
        self.fall_back_on = fall_back_on
        self.fallback_on_content_filter = fallback_on_content_filter
        self.clock = clock or SYSTEM_CLOCK

    @property
    def context_window(self) -> int | None:
        windows = [m.context_window for m in self.models if m.context_window is not None]
        return max(windows) if windows else None

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """Each member's circuit breaker (by ``provider:name``), for inspection."""
        return {
            f"{m.provider}:{m.name}": m.breaker
            for m in self.models
            if isinstance(m, ResilientModel) and m.breaker is not None
        }

    def close(self) -> None:
        for member in self.models:
            member.close()

    async def aclose(self) -> None:
        for member in self.models:
            await member.aclose()

    def __repr__(self) -> str:
        return f"<FallbackModel {self.name}>"

    # ------------------------------------------------------------------------------ decisions

    def _falls_back(self, error: ModelMixError) -> bool:
        if self.fall_back_on is not None:
            verdict = self.fall_back_on(error)
            if verdict is not None:
                return verdict
        return should_fall_back(error, on_content_filter=self.fallback_on_content_filter)

    def _plan(self) -> list[Model]:
        """Panic mode: when every member's breaker refuses calls, let the one reopening soonest
        (not a MISCONFIGURED one) probe now."""
        now = self.clock.now()
        breakers = [m.breaker if isinstance(m, ResilientModel) else None for m in self.models]
        if all(b is not None and b.blocked(now) for b in breakers):
            candidates = [b for b in breakers if b is not None and not b.misconfigured]
            if candidates:
                soonest = min(candidates, key=lambda b: b.reopen_at(now) or now)
                if soonest.force_probe(now):
                    logger.info("every model of %s is open: probing %s", self.name, soonest.name)
        return self.models

    def _fits(self, member: Model, too_long: ContextLengthExceededError, window: int | None) -> bool:
        limit = too_long.limit or window
        candidate = member.context_window
        if candidate is None:
            return False
        if too_long.requested is not None and candidate < too_long.requested:
            return False
        return limit is None or candidate > limit

    def _synth(
        self, member: Model, error: BaseException | None, started: float, response: ChatResponse | None
    ) -> Attempt:
        return attempt_record(member, error=error, elapsed=self.clock.now() - started, retry_no=0, response=response)

    def _deadline_exceeded(
        self, deadline: Deadline, attempts: list[Attempt], last: BaseException | None
    ) -> DeadlineExceededError:
        error = _deadline_error(deadline, f"fallback chain; attempts: {len(attempts)}")
        error.attempts = list(attempts)
        error.__cause__ = last
        return error

    def _exhausted(self, errors: list[ModelMixError], attempts: list[Attempt], skipped: bool) -> ModelMixError:
        if skipped and len(errors) == 1:
            errors[0].attempts = list(attempts)
            return errors[0]  # no other model could take a prompt that long
        return AllModelsFailedError("every model of the fallback chain failed", errors, attempts=attempts)

    class _Run:
        """The state of one call walking the chain."""

        def __init__(self, chain: FallbackModel, deadline: Deadline) -> None:
            self.chain = chain
            self.deadline = deadline
            self.attempts: list[Attempt] = []
            self.errors: list[ModelMixError] = []
            self.too_long: tuple[ContextLengthExceededError, int | None] | None = None
            self.skipped = False

        def members(self) -> list[Model]:
            return self.chain._plan()

        def eligible(self, member: Model) -> bool:
            if self.too_long is not None and not self.chain._fits(member, *self.too_long):
                logger.debug("fallback: skipping %s:%s, its context window is not larger", member.provider, member.name)
                self.skipped = True
                return False
            return True

        def check_time(self) -> None:
            if self.deadline.own_remaining() < self.chain.min_attempt_time:
                last = self.errors[-1] if self.errors else None
                raise self.chain._deadline_exceeded(self.deadline, self.attempts, last)

        def failed(self, member: Model, error: ModelMixError, started: float, nested: list[Attempt] | None) -> None:
            """Record a member's failure; raise when the chain must stop here."""
            self.attempts.extend(nested or [self.chain._synth(member, error, started, None)])
            if isinstance(error, DeadlineExceededError):
                raise self.chain._deadline_exceeded(self.deadline, self.attempts, error) from error
            self.errors.append(error)
            if not self.chain._falls_back(error):
                error.attempts = list(self.attempts)
                raise error
            if isinstance(error, ContextLengthExceededError):
                self.too_long = (error, member.context_window)
            logger.info(
                "fallback: %s:%s failed with %s; trying the next model",
                member.provider,
                member.name,
                type(error).__name__,
            )

        def answered(self, member: Model, response: ChatResponse, started: float) -> ChatResponse:
            self.attempts.extend(response.attempts or [self.chain._synth(member, None, started, response)])
            return response.model_copy(update={"attempts": list(self.attempts)})

        def exhausted(self) -> ModelMixError:
            if self.errors and self.deadline.own_remaining() < self.chain.min_attempt_time:
                # The members stopped retrying because time ran out: that is what the caller should see.
                return self.chain._deadline_exceeded(self.deadline, self.attempts, self.errors[-1])
            return self.chain._exhausted(self.errors, self.attempts, self.skipped)

    # ---------------------------------------------------------------------------------- calls

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        run = self._Run(self, effective_deadline(self.clock, self.deadline, in_async=False))
        for member in run.members():
            if not run.eligible(member):
                continue
            run.check_time()
            started = self.clock.now()
            try:
                with using_deadline(run.deadline):
                    response = member.chat(messages, **settings)
            except ModelMixError as error:
                run.failed(member, error, started, error.attempts or None)
                continue
            return run.answered(member, response, started)
        raise run.exhausted()

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        run = self._Run(self, effective_deadline(self.clock, self.deadline, in_async=True))
        for member in run.members():
            if not run.eligible(member):
                continue
            run.check_time()
            started = self.clock.now()
            response: ChatResponse | None = None
            try:
                with using_deadline(run.deadline), anyio.move_on_after(max(run.deadline.own_remaining(), 0.0)):
                    response = await member.achat(messages, **settings)
                if response is None:
                    raise _deadline_error(run.deadline, "attempt")
            except ModelMixError as error:
                run.failed(member, error, started, error.attempts or None)
                continue
            return run.answered(member, response, started)
        raise run.exhausted()

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        def connect() -> Connected:
            run = self._Run(self, effective_deadline(self.clock, self.deadline, in_async=False))
            for member in run.members():
                if not run.eligible(member):
                    continue
                run.check_time()
                started = self.clock.now()
                with using_deadline(run.deadline):
                    inner = member.stream(messages, **settings)
                    try:
                        iterator, buffered = pull_to_commit(inner)
                    except ModelMixError as error:
                        inner.close()
                        run.failed(member, error, started, error.attempts or None)
                        continue
                    except BaseException:
                        inner.close()
                        raise
                run.attempts.extend(stream_attempts(inner) or [self._synth(member, None, started, None)])
                return Connected(inner, iterator, buffered, run.attempts, run.deadline)
            raise run.exhausted()

        return GuardedStream(connect, provider=self.provider, model=self.name)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def connect() -> Connected:
            run = self._Run(self, effective_deadline(self.clock, self.deadline, in_async=True))
            for member in run.members():
                if not run.eligible(member):
                    continue
                run.check_time()
                started = self.clock.now()
                inner = member.astream(messages, **settings)
                try:
                    with using_deadline(run.deadline):
                        pulled = await apull_to_commit(inner, max(run.deadline.own_remaining(), 0.0))
                    if pulled is None:
                        raise _deadline_error(run.deadline, "first token")
                except ModelMixError as error:
                    await aclose_quietly(inner)
                    run.failed(member, error, started, error.attempts or None)
                    continue
                except BaseException:
                    await aclose_quietly(inner)
                    raise
                run.attempts.extend(stream_attempts(inner) or [self._synth(member, None, started, None)])
                iterator, buffered = pulled
                return Connected(inner, iterator, buffered, run.attempts, run.deadline)
            raise run.exhausted()

        return GuardedAsyncStream(connect, provider=self.provider, model=self.name)


def fallback(
    *models: Model | str,
    deadline: float | None = 600.0,
    min_attempt_time: float = 1.0,
    fall_back_on: FallbackPredicate | None = None,
    fallback_on_content_filter: bool = False,
    breakers: bool = True,
    breaker_config: BreakerConfig | None = None,
    clock: Clock | None = None,
    endpoints: EndpointRegistry | None = None,
) -> FallbackModel:
    """A chain: ``mm.fallback("azure:gpt-4o", "openai:gpt-4o-mini", "ollama:llama3.2", deadline=30)``.

    Each model (strings are built with `modelmix.model`, so they retry by default) is tried in
    order under one `deadline` (seconds, also bounded by the caller's cancel scope). A model's
    failure moves on when `fall_back_on` says so, else per the fault matrix: transport errors,
    5xx, 429s, auth/not-found, open circuits and pre-commit stream failures move on; a context
    window overflow moves only to models with a larger ``context_window``; a content-filter
    rejection stops unless ``fallback_on_content_filter=True``. When every model fails the error
    is an `AllModelsFailedError` (an ExceptionGroup).

    ``breakers=True`` (default) puts each model behind its endpoint's circuit breaker.
    """
    from .._registry import model as build

    built: list[Model] = []
    table = endpoints or registry
    for item in models:
        member = build(item) if isinstance(item, str) else item
        if breakers:
            member = circuit_breaker(
                member, config=breaker_config, clock=clock, endpoints=table, min_attempt_time=min_attempt_time
            )
        elif clock is not None and isinstance(member, ResilientModel):
            member = member.replace(clock=clock)
        built.append(member)
    return FallbackModel(
        built,
        deadline=deadline,
        min_attempt_time=min_attempt_time,
        fall_back_on=fall_back_on,
        fallback_on_content_filter=fallback_on_content_filter,
        clock=clock,
    )
