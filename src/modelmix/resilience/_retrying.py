"""`ResilientModel`: one deployment with retries (tenacity), a deadline, stream timeouts, a retry
budget and optionally a circuit breaker. `retrying()` and `circuit_breaker()` build it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import anyio
from tenacity import AsyncRetrying, RetryCallState, Retrying
from typing_extensions import Unpack

from .._call_deadline import attempt_ends_in
from .._exceptions import ModelMixError, ProviderError, RetryBudgetExhaustedError, TransportError
from .._messages import MessagesInput
from .._model import Model
from .._response import Attempt, ChatResponse
from .._settings import Settings
from .._streaming import AsyncStream, Stream
from ._attempts import attempt_record, log_attempt, logger, prompt_preview
from ._breaker import BreakerConfig, CircuitBreaker, classify
from ._clock import SYSTEM_CLOCK, Clock, Deadline, effective_deadline
from ._endpoints import EndpointRegistry, endpoint_of, registry
from ._policy import (
    BUDGET_SPENT,
    RetryBudget,
    RetryPolicy,
    default_wait,
    is_budget_failure,
    is_reset_before_headers,
    retry_if_retryable,
    stop_on_deadline_or_budget,
)
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

__all__ = ["ResilientModel", "circuit_breaker", "retrying"]

_TIMEOUT_KINDS = ("read_timeout", "write_timeout", "pool_timeout", "connect_timeout", "timeout")


class ResilientModel(Model):
    """A model whose calls retry (retryable errors, backoff, server hints, budget) within one deadline.

    It is a `Model` itself, so it composes (fallback chains, hedging). Attributes of the wrapped
    model (``base_url``, ``host``...) stay readable through it.
    """

    def __init__(
        self,
        inner: Model,
        *,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        use_budget: bool = True,
        clock: Clock | None = None,
        endpoints: EndpointRegistry | None = None,
        log_content: bool = False,
    ) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.name = inner.name
        self.settings = inner.settings
        self.policy = policy or RetryPolicy()
        self.clock = clock or SYSTEM_CLOCK
        self.endpoints = endpoints or registry
        self.budget = (
            budget if budget is not None else (self.endpoints.budget(endpoint_of(inner)) if use_budget else None)
        )
        self.breaker = breaker
        self.log_content = log_content

    # ------------------------------------------------------------------------------ composition

    def replace(self, **changes: Any) -> ResilientModel:
        """A copy with some options changed (``policy``, ``breaker``, ``clock``...)."""
        options: dict[str, Any] = {
            "policy": self.policy,
            "breaker": self.breaker,
            "budget": self.budget,
            "use_budget": self.budget is not None,
            "clock": self.clock,
            "endpoints": self.endpoints,
            "log_content": self.log_content,
        }
        options.update(changes)
        inner = options.pop("inner", self.inner)
        return ResilientModel(inner, **options)

    @property
    def context_window(self) -> int | None:
        return self.inner.context_window

    @property
    def endpoint(self) -> str:
        return endpoint_of(self.inner)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not found normally: expose the wrapped model's (base_url...).
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        extra = f" breaker={self.breaker.state(self.clock.now()).value}" if self.breaker else ""
        return (
            f"<ResilientModel {self.provider}:{self.name} retries={self.policy.max_retries}{extra} of {self.inner!r}>"
        )

    # ---------------------------------------------------------------------------- bookkeeping

    def _deadline(self, *, in_async: bool) -> Deadline:
        return effective_deadline(self.clock, self.policy.deadline, in_async=in_async)

    def _tenacity(self, deadline: Deadline, stops: list[str]) -> dict[str, Any]:
        def on_stop(reason: str) -> None:
            stops.append(reason)
            logger.info("%s:%s: not retrying: %s", self.provider, self.name, reason)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            logger.info(
                "%s:%s: retry %d/%d in %.2f s after %s",
                self.provider,
                self.name,
                state.attempt_number,
                self.policy.max_retries,
                state.upcoming_sleep,
                type(error).__name__,
            )

        return {
            "retry": retry_if_retryable(self.policy),
            "wait": default_wait(self.policy),
            "stop": stop_on_deadline_or_budget(self.policy, deadline, self.budget, on_stop=on_stop),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def _before_attempt(self, deadline: Deadline, retry_no: int, messages: MessagesInput) -> bool:
        """Check the deadline and the breaker; True when this attempt is the breaker's probe."""
        admission = None
        if deadline.own_remaining() < self.policy.min_attempt_time:
            raise _deadline_error(deadline, "before attempt")
        if self.breaker is not None:
            now = self.clock.now()
            # A retry is paced by the server's hint, so the 429 cooldown only steers *new* calls.
            admission = self.breaker.admit(now, ignore_cooldown=retry_no > 0)
            if admission is None:
                raise self.breaker.error(now)
        if self.log_content:
            logger.debug("%s:%s prompt: %s", self.provider, self.name, prompt_preview(messages))
        return self.breaker is not None and admission == "probe"

    def _attempt_bound(self, deadline: Deadline, *, stream_read: float | None = None) -> float:
        """Seconds the attempt may take: the deadline, less a margin so the HTTP layer's own
        timeout ends it cleanly first (and, for sync streams, the first-token/idle limit)."""
        return min(deadline.own_remaining() - 0.02, math.inf if stream_read is None else stream_read)

    def _failure(self, error: BaseException, deadline: Deadline, *, streaming: bool = False) -> BaseException:
        """A timeout the deadline caused is the deadline's error, not the endpoint's."""
        if streaming and isinstance(error, ProviderError) and error.phase is None:
            error.phase = "pre_commit_stream"  # decoder errors don't know where they happened
        if isinstance(error, TransportError) and error.kind in _TIMEOUT_KINDS and deadline.own_remaining() <= 0.05:
            exc = _deadline_error(deadline, "queue" if error.kind == "pool_timeout" else "attempt")
            exc.__cause__ = error
            return exc
        return error

    def _record(
        self,
        attempts: list[Attempt],
        *,
        error: BaseException | None,
        started: float,
        retry_no: int,
        response: ChatResponse | None = None,
        nested: list[Attempt] | None = None,
    ) -> None:
        if nested:
            attempts.extend(a.model_copy(update={"retry_no": a.retry_no + retry_no}) for a in nested)
            for attempt in nested:
                log_attempt(attempt)
        else:
            attempt = attempt_record(
                self, error=error, elapsed=self.clock.now() - started, retry_no=retry_no, response=response
            )
            attempts.append(attempt)
            log_attempt(attempt)

    def _health(self, error: BaseException | None, *, retry_no: int, probe: bool, completed: bool = True) -> None:
        now = self.clock.now()
        if error is None:
            if self.budget is not None and completed:
                self.budget.record_success()
            if self.breaker is not None:
                self.breaker.record("success" if completed else "ignored", now, probe=probe)
            return
        if self.budget is not None and is_budget_failure(error):
            self.budget.record_failure()
        if self.breaker is not None:
            outcome = classify(error)
            # A reset before the headers on the first try is most likely a stale keep-alive
            # connection, not a sick endpoint.
            if retry_no == 0 and is_reset_before_headers(error):
                outcome = "ignored"
            self.breaker.record(outcome, now, retry_after=getattr(error, "retry_after", None), probe=probe)

    def _attempt_failed(
        self,
        raw: BaseException,
        deadline: Deadline,
        attempts: list[Attempt],
        *,
        started: float,
        retry_no: int,
        probe: bool,
    ) -> BaseException:
        """Record a failed attempt (attempt list, log, budget, breaker); returns the error to raise."""
        error = self._failure(raw, deadline)
        self._record(attempts, error=error, started=started, retry_no=retry_no, nested=_nested(raw))
        self._health(error, retry_no=retry_no, probe=probe)
        return error

    def _attempt_succeeded(
        self, response: ChatResponse, attempts: list[Attempt], *, started: float, retry_no: int, probe: bool
    ) -> None:
        self._record(
            attempts, error=None, started=started, retry_no=retry_no, response=response, nested=response.attempts
        )
        self._health(None, retry_no=retry_no, probe=probe)

    # -------------------------------------------------------------------------------- chat

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        deadline = self._deadline(in_async=False)
        attempts: list[Attempt] = []
        stops: list[str] = []
        response: ChatResponse | None = None
        try:
            # Fast path: most calls succeed first time, so tenacity is only set up after a failure.
            try:
                response = self._chat_once(messages, settings, deadline, 0, attempts)
            except ModelMixError as first_failure:
                for attempt in Retrying(sleep=self.clock.sleep, **self._tenacity(deadline, stops)):
                    with attempt:
                        retry_no = attempt.retry_state.attempt_number - 1
                        if retry_no == 0:
                            # Replayed so tenacity decides on it exactly as if it had made the call.
                            raise first_failure
                        response = self._chat_once(messages, settings, deadline, retry_no, attempts)
        except ModelMixError as exc:
            final = _final_error(exc, attempts, stops)
            if final is exc:
                raise
            raise final from exc
        assert response is not None
        return response.model_copy(update={"attempts": attempts})

    def _chat_once(
        self,
        messages: MessagesInput,
        settings: Mapping[str, Any],
        deadline: Deadline,
        retry_no: int,
        attempts: list[Attempt],
    ) -> ChatResponse:
        probe = self._before_attempt(deadline, retry_no, messages)
        started = self.clock.now()
        try:
            with attempt_ends_in(self._attempt_bound(deadline)):
                response = self.inner.chat(messages, **settings)
        except BaseException as raw:
            error = self._attempt_failed(raw, deadline, attempts, started=started, retry_no=retry_no, probe=probe)
            if error is raw:
                raise
            raise error from raw
        self._attempt_succeeded(response, attempts, started=started, retry_no=retry_no, probe=probe)
        return response

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        deadline = self._deadline(in_async=True)
        attempts: list[Attempt] = []
        stops: list[str] = []
        response: ChatResponse | None = None
        try:
            try:
                response = await self._achat_once(messages, settings, deadline, 0, attempts)
            except ModelMixError as first_failure:
                async for attempt in AsyncRetrying(sleep=self.clock.asleep, **self._tenacity(deadline, stops)):
                    with attempt:
                        retry_no = attempt.retry_state.attempt_number - 1
                        if retry_no == 0:
                            raise first_failure
                        response = await self._achat_once(messages, settings, deadline, retry_no, attempts)
        except ModelMixError as exc:
            final = _final_error(exc, attempts, stops)
            if final is exc:
                raise
            raise final from exc
        assert response is not None
        return response.model_copy(update={"attempts": attempts})

    async def _achat_once(
        self,
        messages: MessagesInput,
        settings: Mapping[str, Any],
        deadline: Deadline,
        retry_no: int,
        attempts: list[Attempt],
    ) -> ChatResponse:
        probe = self._before_attempt(deadline, retry_no, messages)
        started = self.clock.now()
        response: ChatResponse | None = None
        try:
            with (
                anyio.move_on_after(max(deadline.own_remaining(), 0.0)),
                attempt_ends_in(self._attempt_bound(deadline)),
            ):
                response = await self.inner.achat(messages, **settings)
            if response is None:
                raise _deadline_error(deadline, "attempt")
        except BaseException as raw:
            error = self._attempt_failed(raw, deadline, attempts, started=started, retry_no=retry_no, probe=probe)
            if error is raw:
                raise
            raise error from raw
        self._attempt_succeeded(response, attempts, started=started, retry_no=retry_no, probe=probe)
        return response

    # ------------------------------------------------------------------------------ streams

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        def connect() -> Connected:
            deadline = self._deadline(in_async=False)
            attempts: list[Attempt] = []
            stops: list[str] = []
            connected: Connected | None = None
            try:
                for attempt in Retrying(sleep=self.clock.sleep, **self._tenacity(deadline, stops)):
                    with attempt:
                        connected = self._open_once(
                            messages, settings, deadline, attempt.retry_state.attempt_number - 1, attempts
                        )
            except ModelMixError as exc:
                final = _final_error(exc, attempts, stops)
                if final is exc:
                    raise
                raise final from exc
            assert connected is not None
            return connected

        return GuardedStream(connect, provider=self.provider, model=self.name)

    def _stream_read_timeout(self) -> float | None:
        limits = [t for t in (self.policy.ttft_timeout, self.policy.idle_timeout) if t is not None]
        return max(limits) if limits else None

    def _open_once(
        self,
        messages: MessagesInput,
        settings: Mapping[str, Any],
        deadline: Deadline,
        retry_no: int,
        attempts: list[Attempt],
    ) -> Connected:
        probe = self._before_attempt(deadline, retry_no, messages)
        started = self.clock.now()
        try:
            inner = self.inner.stream(messages, **settings)
        except BaseException:
            self._health(None, retry_no=retry_no, probe=probe, completed=False)  # bad input: give the slot back
            raise
        try:
            with attempt_ends_in(self._attempt_bound(deadline, stream_read=self._stream_read_timeout())):
                iterator, buffered = pull_to_commit(inner)
        except BaseException as raw:
            inner.close()
            error = self._failure(raw, deadline, streaming=True)
            self._record(attempts, error=error, started=started, retry_no=retry_no, nested=_nested(raw))
            self._health(error, retry_no=retry_no, probe=probe)
            if error is raw:
                raise
            raise error from raw
        self._record(attempts, error=None, started=started, retry_no=retry_no, nested=stream_attempts(inner))
        return Connected(
            inner,
            iterator,
            buffered,
            attempts,
            deadline,
            on_done=lambda error, completed: self._health(error, retry_no=retry_no, probe=probe, completed=completed),
        )

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        async def connect() -> Connected:
            deadline = self._deadline(in_async=True)
            attempts: list[Attempt] = []
            stops: list[str] = []
            connected: Connected | None = None
            try:
                async for attempt in AsyncRetrying(sleep=self.clock.asleep, **self._tenacity(deadline, stops)):
                    with attempt:
                        connected = await self._aopen_once(
                            messages, settings, deadline, attempt.retry_state.attempt_number - 1, attempts
                        )
            except ModelMixError as exc:
                final = _final_error(exc, attempts, stops)
                if final is exc:
                    raise
                raise final from exc
            assert connected is not None
            return connected

        return GuardedAsyncStream(connect, provider=self.provider, model=self.name)

    async def _aopen_once(
        self,
        messages: MessagesInput,
        settings: Mapping[str, Any],
        deadline: Deadline,
        retry_no: int,
        attempts: list[Attempt],
    ) -> Connected:
        probe = self._before_attempt(deadline, retry_no, messages)
        started = self.clock.now()
        try:
            inner = self.inner.astream(messages, **settings)
        except BaseException:
            self._health(None, retry_no=retry_no, probe=probe, completed=False)  # bad input: give the slot back
            raise
        try:
            left = max(deadline.own_remaining(), 0.0)
            ttft = self.policy.ttft_timeout if self.policy.ttft_timeout is not None else math.inf
            with attempt_ends_in(self._attempt_bound(deadline)):
                pulled = await apull_to_commit(inner, min(ttft, left))
            if pulled is None:
                if ttft < left:
                    raise TransportError(
                        f"no content within the {ttft:g} s first-token timeout",
                        kind="ttft_timeout",
                        phase="pre_commit_stream",
                        provider=self.provider,
                        model=self.name,
                        host=getattr(self.inner, "host", None),
                    )
                raise _deadline_error(deadline, "first token")
        except BaseException as raw:
            await aclose_quietly(inner)
            error = self._failure(raw, deadline, streaming=True)
            self._record(attempts, error=error, started=started, retry_no=retry_no, nested=_nested(raw))
            self._health(error, retry_no=retry_no, probe=probe)
            if error is raw:
                raise
            raise error from raw
        self._record(attempts, error=None, started=started, retry_no=retry_no, nested=stream_attempts(inner))
        iterator, buffered = pulled
        return Connected(
            inner,
            iterator,
            buffered,
            attempts,
            deadline,
            idle_timeout=self.policy.idle_timeout,
            on_done=lambda error, completed: self._health(error, retry_no=retry_no, probe=probe, completed=completed),
        )


def _final_error(error: ModelMixError, attempts: list[Attempt], stops: list[str]) -> ModelMixError:
    """The error a call ends with: the last attempt's, or `RetryBudgetExhaustedError` (caused by it)
    when the endpoint's retry budget is what stopped a retry the error deserved."""
    error.attempts = attempts
    if stops and stops[-1] == BUDGET_SPENT:
        exhausted = RetryBudgetExhaustedError(
            f"{BUDGET_SPENT}, so {type(error).__name__} was not retried: the endpoint is failing often"
        )
        exhausted.attempts = attempts
        return exhausted
    return error


def _nested(error: BaseException) -> list[Attempt] | None:
    """Attempts recorded by a wrapper inside this one (so they are not recorded twice)."""
    return list(error.attempts) if isinstance(error, ModelMixError) and error.attempts else None


def retrying(
    model: Model | str,
    *,
    max_retries: int = 2,
    deadline: float | None = 600.0,
    ttft_timeout: float | None = 60.0,
    idle_timeout: float | None = 60.0,
    min_attempt_time: float = 1.0,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    budget: RetryBudget | None = None,
    use_budget: bool = True,
    log_content: bool = False,
    **options: Any,
) -> ResilientModel:
    """Retry `model` by the documented policy: the retryable set, full-jitter backoff, server hints
    (``retry-after-ms`` → ``x-ms-retry-after-ms`` → ``Retry-After``), ``x-should-retry``, a
    per-endpoint retry budget, all inside one `deadline` (seconds).

    A string is built with `modelmix.model` first (``options`` go to the provider).
    """
    if isinstance(model, str):
        from .._registry import model as build

        model = build(model, max_retries=0, **options)
    elif options:
        raise TypeError(f"unexpected options {sorted(options)}: they apply only when a model string is given")
    if policy is None:
        policy = RetryPolicy(
            max_retries=max_retries,
            deadline=deadline,
            ttft_timeout=ttft_timeout,
            idle_timeout=idle_timeout,
            min_attempt_time=min_attempt_time,
        )
    if isinstance(model, ResilientModel):
        # Same kind of wrapper: this retry policy replaces the one inside (no retries of retries),
        # and everything else it does stays — its circuit breaker above all.
        return model.replace(
            policy=policy,
            clock=clock or model.clock,
            budget=budget if budget is not None else (model.budget if use_budget else None),
            use_budget=use_budget,
            log_content=log_content or model.log_content,
        )
    return ResilientModel(
        model, policy=policy, clock=clock, budget=budget, use_budget=use_budget, log_content=log_content
    )


def circuit_breaker(
    model: Model | str,
    *,
    config: BreakerConfig | None = None,
    breaker: CircuitBreaker | None = None,
    clock: Clock | None = None,
    endpoints: EndpointRegistry | None = None,
    min_attempt_time: float = 1.0,
) -> ResilientModel:
    """Guard `model` with its endpoint's circuit breaker (see Deadlines, circuit breakers and hedging).

    Inside a retrying model the breaker sees every attempt; the breaker is shared by every
    wrapper of the same (endpoint, model) unless one is passed. Inspect it with ``.breaker``.
    """
    if isinstance(model, str):
        from .._registry import model as build

        model = build(model)
    table = endpoints or (model.endpoints if isinstance(model, ResilientModel) else registry)
    if isinstance(model, ResilientModel):
        chosen = breaker or model.breaker or table.breaker(model.endpoint, model.name, config)
        return model.replace(breaker=chosen, clock=clock or model.clock, endpoints=table)
    chosen = breaker or table.breaker(endpoint_of(model), model.name, config)
    return ResilientModel(
        model,
        policy=RetryPolicy(max_retries=0, min_attempt_time=min_attempt_time),
        breaker=chosen,
        clock=clock,
        endpoints=table,
    )
