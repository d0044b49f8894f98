"""`HedgedModel`: after a delay, race a backup request against a slow primary.

At most one hedge, only before the commit point; the loser is cancelled and its connection
closed in a shielded scope. Sync calls can't race, so they use the backup only as a fallback.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import anyio
from typing_extensions import Unpack

from .. import _observe
from .._exceptions import AllModelsFailedError, ConfigurationError, ModelMixError
from .._messages import MessagesInput
from .._model import Model
from .._response import Attempt, ChatResponse, with_attempts
from .._settings import Settings
from .._streaming import AsyncStream, Stream
from ._arguments import check_count, check_models, check_seconds
from ._attempts import attempt_record, logger
from ._clock import SYSTEM_CLOCK, Clock, Deadline, deadline_error, effective_deadline, using_deadline
from ._endpoints import registry
from ._fallback import FallbackModel
from ._policy import RetryBudget
from ._streams import Connected, GuardedAsyncStream, aclose_quietly, apull_to_commit, stream_attempts
from ._wrapper import WrapperModel

__all__ = ["HedgedModel", "hedge"]

T = TypeVar("T")

LOST_HEDGE = "lost_hedge"
"""`Attempt.error` of a contender whose rival answered first (cancelled, or answered too and discarded)."""


class TTFTHistogram:
    """The last `size` times-to-first-token of the primary, for ``after="p95"``."""

    def __init__(self, size: int = 200) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, p: float) -> float:
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100.0 * len(ordered)) - 1))
        return ordered[index]


class _Race(Generic[T]):
    """Primary now, backup after `delay` (or at once when the primary fails); first success wins."""

    def __init__(self, close_loser: Callable[[T], Awaitable[None]], clock: Clock) -> None:
        self.winner: tuple[str, T] | None = None
        self.errors: dict[str, ModelMixError] = {}
        self.started: dict[str, float] = {}
        """When each contender started (a backup that never started is absent)."""
        self.discarded: dict[str, T] = {}
        """A contender that finished in the same instant as the winner: closed, but it was paid for."""
        self._close_loser = close_loser
        self._clock = clock

    async def run(
        self,
        primary: Callable[[], Awaitable[T]],
        backup: Callable[[], Awaitable[T]],
        delay: float,
        may_hedge: Callable[[], bool],
    ) -> None:
        primary_failed = anyio.Event()
        async with anyio.create_task_group() as group:

            async def contender(label: str, call: Callable[[], Awaitable[T]]) -> None:
                self.started[label] = self._clock.now()
                if _observe.ACTIVE:  # each contender runs in its own task: this stays in it
                    _observe.set_hedge_position(0 if label == "primary" else 1)
                try:
                    result = await call()
                except ModelMixError as exc:
                    self.errors[label] = exc
                    if label == "primary":
                        primary_failed.set()
                    return
                if self.winner is None:
                    self.winner = (label, result)
                    group.cancel_scope.cancel()
                else:  # both finished in the same instant: the second one loses
                    self.discarded[label] = result
                    await self._close_loser(result)

            async def hedge_later() -> None:
                with anyio.move_on_after(delay):
                    await primary_failed.wait()
                if self.winner is not None:
                    return
                if not primary_failed.is_set() and not may_hedge():
                    return
                logger.info(
                    "hedge: starting the backup request (%s)",
                    "primary failed" if primary_failed.is_set() else f"after {delay:.3f} s",
                )
                await contender("backup", backup)

            group.start_soon(contender, "primary", primary)
            group.start_soon(hedge_later)


class HedgedModel(WrapperModel):
    """See `hedge`. `wrapped` (also `primary`) is the primary model; `backup` races it."""

    def __init__(
        self,
        primary: Model,
        backup: Model,
        *,
        after: float | str,
        initial_after: float = 1.0,
        min_samples: int = 20,
        deadline: float | None = 600.0,
        clock: Clock | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        if isinstance(after, str):
            if not (after.startswith("p") and after[1:].replace(".", "", 1).isdigit() and 0 < float(after[1:]) <= 100):
                raise ConfigurationError(f"hedge(after=...) takes seconds or a percentile like 'p95', not {after!r}")
        else:
            check_seconds("hedge", "after", after, zero=True)
        check_models("hedge", [primary, backup])
        check_seconds("hedge", "initial_after", initial_after, zero=True)
        check_count("hedge", "min_samples", min_samples, minimum=1)
        check_seconds("hedge", "deadline", deadline, optional=True)
        super().__init__(primary)
        self.primary = primary
        self.backup = backup
        self.after = after
        self.initial_after = initial_after
        self.min_samples = min_samples
        self.deadline = deadline
        self.clock = clock or SYSTEM_CLOCK
        self.budget = budget or registry.budget(primary.endpoint)
        self.ttft = TTFTHistogram()

    def close(self) -> None:
        self.primary.close()
        self.backup.close()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.backup.aclose()

    def __repr__(self) -> str:
        return f"<HedgedModel {self.primary!r} hedged by {self.backup!r} after={self.after!r}>"

    def hedge_delay(self) -> float:
        """Seconds to wait before starting the backup."""
        if isinstance(self.after, (int, float)):
            return float(self.after)
        if len(self.ttft) < self.min_samples:
            return self.initial_after
        return self.ttft.percentile(float(self.after[1:]))

    def _may_hedge(self) -> bool:
        # Hedges spend from the primary endpoint's retry budget, so a sick endpoint can't double its load.
        if self.budget.spend():
            return True
        logger.info("hedge: skipped, the retry budget of %s is spent", self.primary.endpoint)
        return False

    def _as_fallback(self) -> FallbackModel:
        return FallbackModel(
            [self.primary, self.backup], deadline=self.deadline, min_attempt_time=0.0, clock=self.clock
        )

    # ---------------------------------------------------------------------------------- calls

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Both models must take the call's settings (the backup may be called at any time)."""
        self._as_fallback().check_settings(settings)

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return self._as_fallback().chat(messages, **settings)

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        return self._as_fallback().stream(messages, **settings)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        self.check_settings(settings)
        if _observe.ACTIVE:
            return await _observe.aobserve_chat(self, messages, settings, lambda: self._achat(messages, settings))
        return await self._achat(messages, settings)

    async def _achat(self, messages: MessagesInput, settings: Settings) -> ChatResponse:
        deadline = effective_deadline(self.clock, self.deadline, in_async=True)

        async def call(model: Model) -> ChatResponse:
            with using_deadline(deadline):
                return await model.achat(messages, **settings)

        # A whole answer's latency says nothing about time to first token (it grows with the
        # answer's length), so only streams feed the histogram.
        race, label, response = await self._race(deadline, call, _drop)
        attempts = self._losers(race, label) + self._answered(race, label, response.attempts, response)
        return with_attempts(response, attempts)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        self.check_settings(settings)

        async def connect() -> Connected:
            deadline = effective_deadline(self.clock, self.deadline, in_async=True)
            started = self.clock.now()

            async def open_one(model: Model) -> Connected:
                inner = model.astream(messages, **settings)
                try:
                    with using_deadline(deadline):
                        pulled = await apull_to_commit(inner, max(deadline.own_remaining(), 0.0))
                    if pulled is None:
                        raise deadline_error(deadline, "first token")
                except BaseException:
                    await aclose_quietly(inner)
                    raise
                iterator, buffered = pulled
                return Connected(inner, iterator, buffered, stream_attempts(inner) or [], deadline)

            race, label, connected = await self._race(deadline, open_one, _close_stream)
            if label == "primary":
                self.ttft.add(self.clock.now() - started)
            connected.attempts = self._losers(race, label) + self._answered(race, label, connected.attempts, None)
            return connected

        observed = _observe.aobserve_stream_call(self, messages, settings, connect) if _observe.ACTIVE else connect
        return GuardedAsyncStream(observed, provider=self.provider, model=self.name)

    async def _race(
        self,
        deadline: Deadline,
        contender: Callable[[Model], Awaitable[T]],
        close_loser: Callable[[T], Awaitable[None]],
    ) -> tuple[_Race[T], str, T]:
        """Primary now, backup after the hedge delay; the first success, or the call's error."""
        race: _Race[T] = _Race(close_loser, self.clock)
        with anyio.move_on_after(max(deadline.own_remaining(), 0.0)):
            await race.run(
                lambda: contender(self.primary), lambda: contender(self.backup), self.hedge_delay(), self._may_hedge
            )
        if race.winner is None:
            raise self._failure(race.errors, deadline)
        label, winner = race.winner
        return race, label, winner

    def _contender(self, label: str) -> Model:
        return self.primary if label == "primary" else self.backup

    def _answered(
        self, race: _Race[Any], label: str, recorded: list[Attempt], response: ChatResponse | None
    ) -> list[Attempt]:
        """The winner's attempts: those a wrapper inside it recorded, else one for its answer."""
        if recorded:
            return list(recorded)
        elapsed = self.clock.now() - race.started[label]
        return [attempt_record(self._contender(label), error=None, elapsed=elapsed, retry_no=0, response=response)]

    def _losers(self, race: _Race[Any], winner: str) -> list[Attempt]:
        """What the other contender did: failed (with what it consumed, where its error knows),
        or lost the race — cancelled, or discarded after answering in the same instant."""
        attempts: list[Attempt] = []
        for label in ("primary", "backup"):
            if label == winner or label not in race.started:
                continue
            model, elapsed = self._contender(label), self.clock.now() - race.started[label]
            error = race.errors.get(label)
            if error is not None:
                recorded = error.attempts or [attempt_record(model, error=error, elapsed=elapsed, retry_no=0)]
                attempts.extend(recorded)
                continue
            discarded = race.discarded.get(label)
            usage = discarded.usage if isinstance(discarded, ChatResponse) else None
            cost = discarded.cost if isinstance(discarded, ChatResponse) else None
            lost = attempt_record(model, error=None, elapsed=elapsed, retry_no=0)
            attempts.append(
                lost.model_copy(
                    update={
                        "error": LOST_HEDGE,
                        "phase": "discarded" if discarded else "cancelled",
                        "usage": usage,
                        "cost": cost,
                    }
                )
            )
        return attempts

    def _failure(self, errors: dict[str, ModelMixError], deadline: Deadline) -> ModelMixError:
        if not errors:
            return deadline_error(deadline, "hedged call")
        if len(errors) == 1:
            return next(iter(errors.values()))
        ordered = [errors[k] for k in ("primary", "backup") if k in errors]
        attempts = [a for e in ordered for a in e.attempts]
        return AllModelsFailedError("both the primary and the hedge failed", ordered, attempts=attempts)


async def _drop(_: ChatResponse) -> None:
    """A losing whole answer needs no cleanup."""


async def _close_stream(loser: Connected) -> None:
    stream = loser.stream
    assert isinstance(stream, AsyncStream)
    await aclose_quietly(stream)


def hedge(
    primary: Model | str,
    backup: Model | str,
    *,
    after: float | str,
    initial_after: float = 1.0,
    min_samples: int = 20,
    deadline: float | None = 600.0,
    clock: Clock | None = None,
) -> HedgedModel:
    """Race `backup` against `primary` when the primary has not committed after `after`.

    `after` is seconds, or a percentile of the primary's observed time to first token such as
    ``"p95"`` (``initial_after`` seconds until `min_samples` were seen). A hedge spends a token of
    the primary endpoint's retry budget. Async calls race; sync calls fall back to the backup only
    when the primary fails.
    """
    from .._registry import model as build

    check_models("hedge", [primary, backup])
    return HedgedModel(
        build(primary) if isinstance(primary, str) else primary,
        build(backup) if isinstance(backup, str) else backup,
        after=after,
        initial_after=initial_after,
        min_samples=min_samples,
        deadline=deadline,
        clock=clock,
    )
