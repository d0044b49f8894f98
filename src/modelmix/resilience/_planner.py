"""The call planner: one sans-I/O state machine for retries, fallback, breakers and the deadline.

A plan walks a list of *legs* (a model with its retry policy, breaker and budget). It never
calls a model, sleeps or reads a socket: it answers `next()` with an action — `Call` (attempt
this leg, within these bounds), `Sleep` or `GiveUp` — and is told each attempt's outcome with
`failed()` / `succeeded()` / `committed()`. Thin sync and async drivers (`_drivers.py`) carry the
actions out, so every wrapper's four entry points (chat, achat, stream, astream) share this one
procedure, the way tenacity's ``BaseRetrying.iter()`` serves both its retry loops.

A retrying model is a plan with one leg; a fallback chain is a plan with one leg per member.
Tenacity's wait strategies and ``RetryCallState`` decide the waits, read from the fault table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tenacity import RetryCallState

from .._exceptions import (
    AllModelsFailedError,
    ContextLengthExceededError,
    DeadlineExceededError,
    ModelMixError,
    ProviderError,
    RateLimitError,
    RetryBudgetExhaustedError,
    TransportError,
)
from .._messages import MessagesInput
from .._model import Model
from .._response import Attempt, ChatResponse, with_attempts
from ._attempts import attempt_record, log_attempt, logger, prompt_preview
from ._breaker import CircuitBreaker, classify
from ._clock import Clock, Deadline, deadline_error
from ._faults import fault_kind
from ._policy import BUDGET_SPENT, RetryBudget, RetryPolicy, default_wait, is_budget_failure, retries_allowed

__all__ = ["AskBreaker", "Call", "CallPlan", "ChainRules", "GiveUp", "Leg", "Sleep"]

_TIMEOUT_KINDS = ("read_timeout", "write_timeout", "pool_timeout", "connect_timeout", "timeout")
_MARGIN = 0.02
"""An attempt's HTTP phases end this much before the deadline, so the HTTP layer ends it cleanly."""


# Leg and Call are made on every call: plain slotted records (a frozen dataclass costs several
# times more to build).
@dataclass(slots=True)
class Leg:
    """One model a plan may call, with what guards it."""

    model: Model
    policy: RetryPolicy
    breaker: CircuitBreaker | None = None
    budget: RetryBudget | None = None
    log_content: bool = False


@dataclass(frozen=True)
class ChainRules:
    """How a plan with several legs moves from one to the next."""

    min_attempt_time: float
    falls_back: Callable[[ModelMixError], bool]
    name: str


@dataclass(slots=True)
class Call:
    """Attempt `leg` now. `bound`: seconds its network calls may take (modelmix's own deadline);
    `first_token`: seconds until a stream's first content event (inf: none)."""

    leg: Leg
    retry_no: int
    bound: float
    first_token: float
    probe: bool
    started: float
    deadline: Deadline

    @property
    def timer(self) -> float:
        """Seconds until modelmix's own deadline: async drivers stop the attempt then."""
        return max(self.bound + _MARGIN, 0.0)


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class GiveUp:
    """The call ends with `error` (raised as it is: cancellation keeps its identity)."""

    error: BaseException


@dataclass(frozen=True)
class AskBreaker:
    """Ask `breaker` whether the next attempt may go (its answer needs a state store's round
    trip), then report the answer with `CallPlan.breaker_said`. Sync drivers call ``admit``,
    async ones await ``aadmit``, so no event loop waits on the store."""

    breaker: CircuitBreaker
    now: float
    ignore_cooldown: bool


Action = Call | Sleep | GiveUp | AskBreaker
_ADMIT_RETRY = Sleep(0.0)
"""Marks "admit the retry now" in the pending slot (never handed to a driver)."""


class CallPlan:
    """One call's walk over its legs. Drive it with `next()` until a `Call` succeeds or `GiveUp`."""

    stateful = False
    """The call continues state one server holds (``previous_response_id``): it is retried only
    when it never reached that server (or was turned away with a 429), and never handed on to
    another leg, which does not hold that state."""

    def __init__(
        self,
        legs: Sequence[Leg],
        deadline: Deadline,
        clock: Clock,
        messages: MessagesInput,
        *,
        chain: ChainRules | None = None,
        streaming: bool = False,
        store_io: bool = True,
    ) -> None:
        """`store_io`: the plan may ask a shared breaker's store directly while deciding (sync
        callers); async plans decide from what each breaker already knows, and their admissions
        reach the store through `AskBreaker`."""
        self.legs = list(legs)
        self.deadline = deadline
        self.clock = clock
        self.attempts: list[Attempt] = []
        self._messages = messages
        self._chain = chain
        self._streaming = streaming
        self._errors: list[ModelMixError] = []
        self._index = -1
        self._leg_deadline = deadline
        self._retry: RetryCallState | None = None
        self._pending: Action | None = None
        self._too_long: tuple[ContextLengthExceededError, int | None] | None = None
        self._skipped = False
        self._asked: AskBreaker | None = None
        self._store_io = store_io
        if chain is not None:
            self._panic_probe()
        self._pending = self._next_leg()

    # ------------------------------------------------------------------------------ actions

    def next(self) -> Action:
        """What to do now."""
        action = self._pending
        if action is None:
            raise RuntimeError("the plan has no next step until the attempt's outcome is reported")
        if isinstance(action, AskBreaker):
            self._pending = None  # until `breaker_said`
            return action
        # After a sleep, the retry is admitted (deadline, breaker) when the sleep is over.
        self._pending = _ADMIT_RETRY if isinstance(action, Sleep) else None
        if action is _ADMIT_RETRY:
            return self._admit(self._retry_no)
        return action

    @property
    def _leg(self) -> Leg:
        return self.legs[self._index]

    @property
    def _retry_no(self) -> int:
        return 0 if self._retry is None else self._retry.attempt_number - 1

    def _next_leg(self) -> Action:
        """Move to the next leg that may take this call, or end the plan."""
        while self._index + 1 < len(self.legs):
            self._index += 1
            if not self._eligible(self._leg):
                continue
            if self._chain is not None and self.deadline.own_remaining() < self._chain.min_attempt_time:
                return GiveUp(self._chain_deadline_error(self._errors[-1] if self._errors else None))
            self._retry = None
            self._leg_deadline = self.deadline.narrowed(self._leg.policy.deadline if self._chain else None)
            return self._admit(0)
        return GiveUp(self._exhausted())

    def breaker_said(self, admission: Literal["call", "probe"] | None) -> None:
        """Report the answer to the `AskBreaker` that `next()` returned."""
        asked, self._asked = self._asked, None
        if asked is None:
            raise RuntimeError("breaker_said() without an AskBreaker to answer")
        self._pending = self._admit(self._retry_no, (admission, asked.now))

    def _admit(self, retry_no: int, answer: tuple[Literal["call", "probe"] | None, float] | None = None) -> Action:
        """The next attempt on the current leg, if its deadline and breaker allow one. `answer`:
        the breaker's admission and when it was asked, when it had to ask its store."""
        leg, deadline = self._leg, self._leg_deadline
        # One clock reading serves every check below (every call passes here).
        now = self.clock.now()
        own = (deadline.at if deadline.own_at is None else deadline.own_at) - now
        if own < leg.policy.min_attempt_time:
            return self._leg_failed(deadline_error(deadline, "before attempt"), record=False)
        probe = False
        if leg.breaker is not None:
            # A retry is paced by the server's hint, so a 429 cooldown only steers *new* calls.
            ignore_cooldown = retry_no > 0
            if answer is not None:
                admission, asked_at = answer
            elif leg.breaker.decides_locally(now, ignore_cooldown=ignore_cooldown):
                admission, asked_at = leg.breaker.admit(now, ignore_cooldown=ignore_cooldown), now
            else:
                self._asked = AskBreaker(leg.breaker, now, ignore_cooldown)
                return self._asked
            if admission is None:
                # Explained from the state the store just sent (as of `asked_at`): no second trip.
                return self._leg_failed(leg.breaker.error(asked_at), record=self._chain is not None)
            probe = admission == "probe"
        if leg.log_content:
            logger.debug("%s:%s prompt: %s", leg.model.provider, leg.model.name, prompt_preview(self._messages))
        first_token = math.inf
        if self._streaming and leg.policy.ttft_timeout is not None:
            first_token = leg.policy.ttft_timeout
        if self._streaming and self._chain is not None and math.isfinite(own):
            # A member may not spend more than its share of the time left waiting for a first
            # token, so one silent member can't starve the members after it.
            first_token = min(first_token, own / self._legs_left())
        return Call(leg, retry_no, own - _MARGIN, first_token, probe, now, deadline)

    def _legs_left(self) -> int:
        return sum(1 for leg in self.legs[self._index :] if self._eligible(leg, quiet=True))

    # ----------------------------------------------------------------------------- outcomes

    def failed(self, call: Call, raw: BaseException) -> None:
        """Report that `call` raised `raw`; `next()` then says what to do."""
        error = self._as_deadline(raw, call.deadline)
        self._record(call, error, nested=_nested(raw))
        self._health(call, error)
        if not isinstance(error, ModelMixError):
            self._pending = GiveUp(error)  # cancellation and programming errors end the call as they are
            return
        self._pending = self._after_failure(call, error)

    def succeeded(self, call: Call, response: ChatResponse) -> ChatResponse:
        """Report a whole answer; returns it carrying every attempt made."""
        self._record(call, None, response=response, nested=response.attempts or None)
        self._health(call, None)
        return with_attempts(response, list(self.attempts))

    def committed(self, call: Call, nested: list[Attempt] | None) -> Callable[[BaseException | None, bool], None]:
        """Report a stream read up to its commit point. Its health is known only when it ends:
        call the returned hook then, with the error (or None) and whether it was read to the end."""
        self._record(call, None, nested=nested)

        def ended(error: BaseException | None, completed: bool) -> None:
            self._health(call, error, completed=completed)

        return ended

    def no_first_token(self, call: Call) -> ModelMixError:
        """The error for a stream whose first content event did not come in time."""
        if call.first_token < call.bound + _MARGIN:
            model = call.leg.model
            return TransportError(
                f"no content within the {call.first_token:g} s first-token timeout",
                kind="ttft_timeout",
                phase="pre_commit_stream",
                provider=model.provider,
                model=model.name,
                host=model.host,
            )
        return deadline_error(call.deadline, "first token")

    def attempt_timed_out(self, call: Call) -> ModelMixError:
        return deadline_error(call.deadline, "attempt")

    # ------------------------------------------------------------------------------ deciding

    def _after_failure(self, call: Call, error: ModelMixError) -> Action:
        policy = call.leg.policy
        if self.stateful and not _turned_away(error):
            logger.info(
                "%s:%s: not retrying %s: the call continues server-side state the server may have accepted",
                call.leg.model.provider,
                call.leg.model.name,
                type(error).__name__,
            )
            return self._leg_failed(error, record=False)
        # Tenacity's strategies read a RetryCallState; no tenacity loop drives this call (the
        # planner is the loop), so there is no retry object to point to.
        state = self._retry or RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        self._retry = state
        state.set_exception((type(error), error, error.__traceback__))
        if state.attempt_number > retries_allowed(error, policy):
            return self._leg_failed(error, record=False)
        wait = default_wait(policy)(state)
        reason = self._why_not_retry(call, wait)
        if reason is not None:
            logger.info("%s:%s: not retrying: %s", call.leg.model.provider, call.leg.model.name, reason)
            if reason == BUDGET_SPENT:
                exhausted = RetryBudgetExhaustedError(
                    f"{BUDGET_SPENT}, so {type(error).__name__} was not retried: the endpoint is failing often"
                )
                exhausted.__cause__ = error
                return self._leg_failed(exhausted, record=False)
            return self._leg_failed(error, record=False)
        logger.info(
            "%s:%s: retry %d/%d in %.2f s after %s",
            call.leg.model.provider,
            call.leg.model.name,
            state.attempt_number,
            policy.max_retries,
            wait,
            type(error).__name__,
        )
        state.upcoming_sleep = wait
        state.idle_for += wait
        state.prepare_for_next_attempt()
        return Sleep(wait)

    def _why_not_retry(self, call: Call, wait: float) -> str | None:
        """A wait that does not fit the deadline is not taken (the chain moves on instead); a spent
        retry budget stops retries to keep a failing endpoint from a retry storm."""
        if math.isinf(wait):
            return "the server's retry hint is longer than the cap"
        if call.deadline.remaining() - wait < call.leg.policy.min_attempt_time:
            return f"a {wait:.2f} s wait would not fit the deadline"
        budget = call.leg.budget
        if budget is not None and not budget.allows_retry():
            return BUDGET_SPENT
        return None

    def _leg_failed(self, error: ModelMixError, *, record: bool) -> Action:
        """The current leg is done with `error`: end the call, or move to the next leg."""
        if record:
            self.attempts.append(attempt_record(self._leg.model, error=error, elapsed=0.0, retry_no=self._retry_no))
        if self._chain is None:
            error.attempts = list(self.attempts)
            return GiveUp(error)
        if isinstance(error, DeadlineExceededError):
            if self.deadline.own_remaining() < self._chain.min_attempt_time:
                return GiveUp(self._chain_deadline_error(error))
            # Only this member's own deadline passed (``mm.retrying(m, deadline=...)`` in a chain):
            # the chain still has time, and the next member may answer in it.
            self._errors.append(error)
            logger.info("fallback: %s:%s ran out of its own deadline; trying the next model", *self._who())
            return self._next_leg()
        self._errors.append(error)
        if self.stateful or not self._chain.falls_back(error):
            error.attempts = list(self.attempts)
            return GiveUp(error)
        if isinstance(error, ContextLengthExceededError):
            self._too_long = (error, self._leg.model.context_window)
        logger.info("fallback: %s:%s failed with %s; trying the next model", *self._who(), type(error).__name__)
        return self._next_leg()

    def _who(self) -> tuple[str, str]:
        return self._leg.model.provider, self._leg.model.name

    def _exhausted(self) -> ModelMixError:
        min_time = self._chain.min_attempt_time if self._chain is not None else 0.0
        if self._errors and self.deadline.own_remaining() < min_time:
            # The members stopped because time ran out: that is what the caller should see.
            return self._chain_deadline_error(self._errors[-1])
        if self._skipped and len(self._errors) == 1:
            self._errors[0].attempts = list(self.attempts)
            return self._errors[0]  # no other model could take a prompt that long
        return AllModelsFailedError("every model of the fallback chain failed", self._errors, attempts=self.attempts)

    def _chain_deadline_error(self, last: BaseException | None) -> DeadlineExceededError:
        error = deadline_error(self.deadline, f"fallback chain; attempts: {len(self.attempts)}")
        error.attempts = list(self.attempts)
        error.__cause__ = last
        return error

    def _eligible(self, leg: Leg, *, quiet: bool = False) -> bool:
        """After a context-window overflow, only models with a larger window may take the prompt."""
        if self._too_long is None:
            return True
        too_long, window = self._too_long
        candidate = leg.model.context_window
        limit = too_long.limit or window
        fits = (
            candidate is not None
            and (too_long.requested is None or candidate >= too_long.requested)
            and (limit is None or candidate > limit)
        )
        if not fits and not quiet:
            logger.debug(
                "fallback: skipping %s:%s, its context window is not larger", leg.model.provider, leg.model.name
            )
            self._skipped = True
        return fits

    def _panic_probe(self) -> None:
        """Every leg's breaker refuses calls: let the one reopening soonest (not a MISCONFIGURED
        one) probe now rather than fail the call without trying."""
        now = self.clock.now()
        breakers = [leg.breaker for leg in self.legs]
        # An async plan goes by what each breaker last heard from its store: no round trip here.
        if not breakers or not all(
            b is not None and (b.blocked(now) if self._store_io else b.seems_blocked(now)) for b in breakers
        ):
            return
        candidates = [b for b in breakers if b is not None and not b.misconfigured]
        if candidates:
            soonest = min(
                candidates, key=lambda b: (b.reopen_at(now) if self._store_io else b.seems_reopen_at(now)) or now
            )
            if soonest.force_probe(now) and self._chain is not None:
                logger.info("every model of %s is open: probing %s", self._chain.name, soonest.name)

    # --------------------------------------------------------------------------- bookkeeping

    def _as_deadline(self, error: BaseException, deadline: Deadline) -> BaseException:
        """A timeout our own deadline caused is the deadline's error, not the endpoint's."""
        if self._streaming and isinstance(error, ProviderError) and error.phase is None:
            error.phase = "pre_commit_stream"  # decoder errors don't know where they happened
        if isinstance(error, TransportError) and error.kind in _TIMEOUT_KINDS and deadline.own_remaining() <= 0.05:
            converted = deadline_error(deadline, "queue" if error.kind == "pool_timeout" else "attempt")
            converted.__cause__ = error
            return converted
        return error

    def _record(
        self,
        call: Call,
        error: BaseException | None,
        *,
        response: ChatResponse | None = None,
        nested: list[Attempt] | None = None,
    ) -> None:
        if nested:
            # A wrapper inside this leg recorded its own attempts: keep those, not a summary.
            for attempt in nested:
                self.attempts.append(attempt.model_copy(update={"retry_no": attempt.retry_no + call.retry_no}))
                log_attempt(attempt)
            return
        elapsed = self.clock.now() - call.started
        attempt = attempt_record(
            call.leg.model, error=error, elapsed=elapsed, retry_no=call.retry_no, response=response
        )
        self.attempts.append(attempt)
        log_attempt(attempt)

    def _health(self, call: Call, error: BaseException | None, *, completed: bool = True) -> None:
        leg, now = call.leg, self.clock.now()
        if error is None:
            if leg.budget is not None and completed:
                leg.budget.record_success()
            if leg.breaker is not None:
                leg.breaker.record("success" if completed else "ignored", now, probe=call.probe)
            return
        if leg.budget is not None and is_budget_failure(error):
            leg.budget.record_failure()
        if leg.breaker is not None:
            outcome = classify(error)
            # A reset before the headers on a first try is most likely a stale keep-alive
            # connection, not a sick endpoint.
            if call.retry_no == 0 and fault_kind(error) == "reset_before_headers":
                outcome = "ignored"
            leg.breaker.record(outcome, now, retry_after=getattr(error, "retry_after", None), probe=call.probe)


def _turned_away(error: ModelMixError) -> bool:
    """The server never took the request in: it was not sent, or refused with a rate limit."""
    return getattr(error, "phase", None) == "not_sent" or isinstance(error, RateLimitError)


def _nested(error: BaseException) -> list[Attempt] | None:
    """Attempts recorded by a wrapper inside a leg (so they are not recorded twice)."""
    return list(error.attempts) if isinstance(error, ModelMixError) and error.attempts else None
