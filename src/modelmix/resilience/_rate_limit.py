"""`mm.rate_limit(model, rpm=..., tpm=..., max_concurrency=...)`: client-side limits that hold a
call back instead of sending one the server would refuse with 429.

Before a call is sent it takes one request, its estimated tokens (the prompt counted offline, plus
``max_tokens`` or `output_tokens`) and a concurrency slot from its scope in the store; when the
call ends the estimate is corrected to the real usage and the slot is given back. A call that does
not fit waits — within the call's deadline and `max_wait` — or, when the wait would not fit, is
refused at once with `ClientRateLimitError`, so a fallback chain moves on to its next member.
With ``mm.shared_state("redis://...")`` the limits hold across every process and host.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import APIStatusError, ConfigurationError
from .._messages import MessagesInput
from .._model import Model
from .._response import ChatResponse
from .._settings import merge_settings
from ._clock import SYSTEM_CLOCK, Clock, Deadline, effective_deadline
from ._holding import HoldingModel
from ._limit_error import ClientRateLimitError
from ._state_store import LimitGrant, LimitSpec, StateStore, StoreUnavailable

__all__ = ["RateLimitedModel", "rate_limit"]

logger = logging.getLogger("modelmix")

_WAIT_JITTER = 0.1
"""Waits get 0–10 % extra so workers told the same reset instant don't all come back at once."""


@dataclass(slots=True)
class _Held:
    """What one call took from its scope, until it settles."""

    grant: LimitGrant
    lease: str
    tokens: int
    settled: bool = False


class RateLimitedModel(HoldingModel["_Held | None"]):
    """A model whose calls keep to client-side limits. See `rate_limit`."""

    def __init__(
        self,
        wrapped: Model,
        *,
        limits: LimitSpec,
        scope: str,
        store: StateStore | None = None,
        max_wait: float = 60.0,
        min_attempt_time: float = 1.0,
        output_tokens: int = 512,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(wrapped)
        self.limits = limits
        self.scope = scope
        self._store = store
        self.max_wait = max_wait
        self.min_attempt_time = min_attempt_time
        self.output_tokens = output_tokens
        self.clock = clock or SYSTEM_CLOCK
        self._rng = random.Random()

    @property
    def store(self) -> StateStore:
        """The store the limits live in (the one `shared_state` configured, unless given one)."""
        if self._store is not None:
            return self._store
        from ._shared import current_store

        return current_store()

    def __repr__(self) -> str:
        return f"<RateLimitedModel {self.scope} {self.limits} of {self.wrapped!r}>"

    # ------------------------------------------------------------------------------ taking

    def _estimate(self, messages: MessagesInput, settings: Mapping[str, Any]) -> int:
        """Prompt tokens (counted offline) plus the answer's ``max_tokens`` or `output_tokens`."""
        if self.limits.tpm is None:
            return 0
        from ..tokens._counting import count_tokens

        merged = merge_settings(self.wrapped.settings, settings)
        prompt = count_tokens(messages, model=self.wrapped, use_server=False).tokens
        answer = merged.get("max_tokens")
        return prompt + (answer if isinstance(answer, int) and not isinstance(answer, bool) else self.output_tokens)

    def _wait_budget(self, deadline: Deadline, waited: float) -> float:
        """Seconds this call may still wait: within `max_wait`, leaving `min_attempt_time` of its deadline."""
        return min(self.max_wait - waited, deadline.remaining() - self.min_attempt_time)

    def _refusal(self, grant: LimitGrant | None, reason: str) -> ClientRateLimitError:
        limit = grant.reason if grant is not None else "store"
        wait = None if grant is None or math.isinf(grant.wait) else grant.wait
        return ClientRateLimitError(
            f"rate limit {self.scope!r} ({limit}) held the call to {self.wrapped.provider}:{self.wrapped.name} "
            f"back: {reason}; nothing was sent",
            scope=self.scope,
            limit=limit,
            retry_after=wait,
        )

    def _outcome(self, grant: LimitGrant, tokens: int, lease: str, deadline: Deadline, waited: float) -> float | _Held:
        """The held slot, or the seconds to wait before asking again (raises when it won't fit)."""
        if grant.granted:
            return _Held(grant, lease, tokens)
        if math.isinf(grant.wait):
            raise self._refusal(grant, f"the call's {tokens} estimated tokens exceed the limit on their own")
        wait = grant.wait * (1.0 + self._rng.uniform(0.0, _WAIT_JITTER))
        if wait > self._wait_budget(deadline, waited):
            raise self._refusal(grant, f"a {grant.wait:.2f} s wait does not fit the call's deadline or max_wait")
        return wait

    def _outage(self, exc: StoreUnavailable) -> None:
        if self.store.limit_outage == "refuse":
            raise self._refusal(None, f"its store is unreachable and limits refuse calls meanwhile ({exc})") from exc

    def _take(self, messages: MessagesInput, settings: Mapping[str, Any]) -> _Held | None:
        tokens, lease = self._estimate(messages, settings), uuid.uuid4().hex
        deadline = effective_deadline(self.clock, None, in_async=False)
        waited = 0.0
        while True:
            try:
                grant = self.store.limit_acquire(self.scope, self.limits, tokens, lease)
            except StoreUnavailable as exc:
                self._outage(exc)
                return None
            outcome = self._outcome(grant, tokens, lease, deadline, waited)
            if isinstance(outcome, _Held):
                return outcome
            self.clock.sleep(outcome)
            waited += outcome

    async def _atake(self, messages: MessagesInput, settings: Mapping[str, Any]) -> _Held | None:
        tokens, lease = self._estimate(messages, settings), uuid.uuid4().hex
        deadline = effective_deadline(self.clock, None, in_async=True)
        waited = 0.0
        while True:
            try:
                grant = await self.store.alimit_acquire(self.scope, self.limits, tokens, lease)
            except StoreUnavailable as exc:
                self._outage(exc)
                return None
            outcome = self._outcome(grant, tokens, lease, deadline, waited)
            if isinstance(outcome, _Held):
                return outcome
            await self.clock.asleep(outcome)
            waited += outcome

    # ---------------------------------------------------------------------------- settling

    def _used(self, held: _Held, response: ChatResponse | None, error: BaseException | None) -> int:
        usage = response.usage if response is not None else None
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            return usage.input_tokens + usage.output_tokens
        if isinstance(error, APIStatusError):
            return 0  # refused by the server: nothing generated
        return held.tokens  # unknown (a stream left early, a timeout): keep the estimate

    def _give_back(self, held: _Held | None, response: ChatResponse | None, error: BaseException | None) -> None:
        """Free the slot and correct the tokens, off the caller's path (`StateStore.later`)."""
        if held is None or held.settled:
            return
        held.settled = True
        used = self._used(held, response, error)
        store = self.store
        store.later(lambda: store.limit_settle(self.scope, self.limits, held.grant, held.lease, held.tokens, used))


def rate_limit(
    model: Model | str,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrency: int | None = None,
    scope: str | None = None,
    per: float = 60.0,
    max_wait: float = 60.0,
    output_tokens: int = 512,
    store: StateStore | None = None,
    clock: Clock | None = None,
) -> RateLimitedModel:
    """``mm.rate_limit(model, rpm=500, tpm=30_000, max_concurrency=8)``: keep `model`'s calls under
    client-side limits instead of sending calls the server would refuse with 429.

    `rpm`: requests and `tpm`: tokens (prompt + answer) per `per` seconds (a minute by default),
    counted over a sliding window; `max_concurrency`: calls in flight at once. A call reserves its
    estimated tokens (the prompt counted offline plus ``max_tokens``, else `output_tokens`) and is
    corrected to its real usage when it ends. A call that does not fit waits, within its deadline
    and `max_wait` seconds; when the wait would not fit it raises `ClientRateLimitError` at once,
    nothing sent, and a fallback chain moves on. `scope` names the counters (default: the model's
    endpoint and name): every limiter with the same scope shares them — across processes with
    ``mm.shared_state("redis://...")`` (or `store`).
    """
    from .._registry import model as build

    if isinstance(model, str):
        model = build(model)
    if not isinstance(model, Model):
        raise ConfigurationError(f"rate_limit() takes a model (a Model or a 'provider:model' string), not {model!r}")
    spec = LimitSpec(rpm=rpm, tpm=tpm, max_concurrency=max_concurrency, window=per)
    for name, value in (("max_wait", max_wait),):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ConfigurationError(f"rate_limit({name}={value!r}): seconds, a finite number from 0")
    if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 0:
        raise ConfigurationError(f"rate_limit(output_tokens={output_tokens!r}): a whole number of tokens, from 0")
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ConfigurationError(f"rate_limit(scope={scope!r}): a non-empty string, or None for the model's own")
    inner = model.unwrap()
    return RateLimitedModel(
        model,
        limits=spec,
        scope=scope or f"{model.endpoint}|{inner.name}",
        store=store,
        max_wait=float(max_wait),
        output_tokens=output_tokens,
        clock=clock,
    )
