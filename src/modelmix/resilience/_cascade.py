"""`mm.cascade(cheap, strong, accept=...)`: ask the cheap model first, escalate only when needed.

Each tier is asked in turn; its answer is kept when ``accept(response)`` says so, else the next
(stronger, dearer) tier is asked. A tier that fails the way a fallback chain routes around
(`should_fall_back`: 5xx, 429, a too-long prompt, a refused budget...) escalates too. The
response (`CascadeResponse`) says which tier answered, whether its answer was accepted, what the
whole cascade spent, and what it saved against always asking the last tier: that tier's list
price applied to the answering tier's usage, minus what the cascade spent.

Streams are buffered: an answer can only be judged once it is complete, so `stream` yields the
accepted answer's events at once when the cascade is done.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Union

from typing_extensions import Unpack

from .. import _observe
from .._exceptions import ConfigurationError, ModelMixError
from .._messages import MessagesInput
from .._model import Model
from .._response import Attempt, ChatResponse, summed_usage
from .._settings import Settings
from .._streaming import AsyncStream, NoByteParser, OpenedStream, Stream, _StreamState
from ..tokens import cost_of
from ._arguments import check_models
from ._attempts import attempt_record, logger
from ._fallback import should_fall_back

__all__ = ["CascadeModel", "CascadeResponse", "cascade"]

Verdict = Union[bool, Awaitable[bool]]
Accept = Callable[[ChatResponse], Verdict]
"""Judges a tier's answer: True keeps it. ``achat`` also awaits an async judge."""

NOT_ACCEPTED = "NotAccepted"
"""`Attempt.error` of a tier whose answer `accept` turned down."""


class CascadeResponse(ChatResponse):
    """The answer of a cascade: a `ChatResponse` and which tier gave it.

    ``usage`` and ``cost`` add up every tier asked; ``attempts`` lists them (a turned-down answer
    has ``error="NotAccepted"``).
    """

    tier: int
    """Index in `CascadeModel.tiers` of the tier that answered (0: the first, cheapest)."""
    accepted: bool = True
    """False when no tier's answer passed `accept`: this is the last answer received."""
    answer_cost: Decimal | None = None
    """USD cost of the answering tier's call alone."""
    strongest_cost: Decimal | None = None
    """What the last tier would have cost for this answer: its list price on the answering tier's usage."""
    cost_saved: Decimal | None = None
    """`strongest_cost` minus everything the cascade spent (negative when escalating cost more)."""


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _list_cost(model: Model, response: ChatResponse) -> Decimal | None:
    """`model`'s list price applied to `response`'s usage (None when either is unknown)."""
    inner = model.unwrap()
    return _decimal(cost_of(f"{inner.provider}:{inner.name}", response.usage))


def _like(example: Any, amount: Decimal) -> Any:
    """`amount` in the type the responses use for cost (float today, Decimal with the catalog)."""
    return amount if isinstance(example, Decimal) or example is None else type(example)(amount)


class _Run:
    """One cascade call's bookkeeping (sans-I/O: the sync and async loops share it)."""

    def __init__(self, cascade: CascadeModel) -> None:
        self.cascade = cascade
        self.attempts: list[Attempt] = []
        self.responses: list[ChatResponse] = []
        self.costs: list[Decimal | None] = []
        self.rejected: tuple[int, ChatResponse] | None = None
        self.started = time.perf_counter()

    def failed(self, index: int, tier: Model, error: ModelMixError) -> CascadeResponse | None:
        """A tier failed: None to escalate; else the call ends (with the last rejected answer, if
        any, or by raising `error`)."""
        self.attempts.extend(error.attempts or [attempt_record(tier, error=error, elapsed=0.0, retry_no=0)])
        last = index == len(self.cascade.tiers) - 1
        if not last and self.cascade.escalates_on(error):
            logger.info(
                "cascade: tier %d (%s:%s) failed with %s; escalating",
                index,
                tier.provider,
                tier.name,
                type(error).__name__,
            )
            return None
        if self.rejected is not None:
            return self.result(*self.rejected, accepted=False)
        error.attempts = list(self.attempts)
        raise error

    def answered(self, index: int, tier: Model, response: ChatResponse, accepted: bool) -> CascadeResponse | None:
        """A tier answered: the result when it is kept (or is the last), None to escalate."""
        self.responses.append(response)
        self.costs.append(_decimal(response.cost) if response.cost is not None else _list_cost(tier, response))
        own = response.attempts or [
            attempt_record(tier, error=None, elapsed=response.latency, retry_no=0, response=response)
        ]
        last = index == len(self.cascade.tiers) - 1
        if not accepted and not last:
            own = [*own[:-1], own[-1].model_copy(update={"error": NOT_ACCEPTED, "phase": "not_accepted"})]
            self.attempts.extend(own)
            self.rejected = (index, response)
            logger.info("cascade: tier %d (%s:%s) answer not accepted; escalating", index, tier.provider, tier.name)
            return None
        self.attempts.extend(own)
        return self.result(index, response, accepted=accepted)

    def result(self, index: int, answer: ChatResponse, *, accepted: bool) -> CascadeResponse:
        costs = self.costs
        known = [cost for cost in costs if cost is not None]
        total = sum(known, Decimal(0)) if known else None
        answer_cost = costs[self.responses.index(answer)]
        if index == len(self.cascade.tiers) - 1:
            strongest_cost = answer_cost
        else:
            strongest_cost = _list_cost(self.cascade.tiers[-1], answer)
        saved = None
        if strongest_cost is not None and total is not None and len(known) == len(costs):
            saved = strongest_cost - total
        fields = {name: getattr(answer, name) for name in ChatResponse.model_fields}
        fields.update(
            usage=summed_usage(r.usage for r in self.responses),
            cost=None if total is None else _like(answer.cost, total),
            attempts=list(self.attempts),
            latency=time.perf_counter() - self.started,
        )
        return CascadeResponse(
            **fields,
            tier=index,
            accepted=accepted,
            answer_cost=answer_cost,
            strongest_cost=strongest_cost,
            cost_saved=saved,
        )


class CascadeModel(Model):
    """Tiers asked in order until one's answer is accepted. See `cascade`."""

    provider = "cascade"

    def __init__(
        self,
        tiers: Sequence[Model],
        *,
        accept: Accept,
        escalate_on: Callable[[ModelMixError], bool] | None = None,
    ) -> None:
        if len(tiers) < 2:
            raise ConfigurationError("cascade() needs at least two models: the cheap one first, the strong one last")
        check_models("cascade", tiers)
        if not callable(accept):
            raise ConfigurationError(
                f"accept= must be a function taking the response and returning True to keep it, not {accept!r}"
            )
        self.tiers: list[Model] = list(tiers)
        self.accept = accept
        self.escalates_on = escalate_on or should_fall_back
        self.name = ",".join(f"{m.provider}:{m.name}" for m in self.tiers)
        self.settings = {}

    def with_tiers(self, tiers: Sequence[Model]) -> CascadeModel:
        """The same cascade over other tiers (how a budget puts a guard on each)."""
        return CascadeModel(tiers, accept=self.accept, escalate_on=self.escalates_on)

    def __repr__(self) -> str:
        return f"<CascadeModel {self.name}>"

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Every tier must take the call's settings, checked before the first is asked."""
        for tier in self.tiers:
            tier.check_settings(settings)

    def close(self) -> None:
        for tier in self.tiers:
            tier.close()

    async def aclose(self) -> None:
        for tier in self.tiers:
            await tier.aclose()

    def _judge(self, response: ChatResponse) -> bool:
        verdict = self.accept(response)
        if inspect.isawaitable(verdict):
            if inspect.iscoroutine(verdict):
                verdict.close()
            raise ConfigurationError("accept= returned an awaitable: an async judge needs achat() or astream()")
        return bool(verdict)

    async def _ajudge(self, response: ChatResponse) -> bool:
        verdict = self.accept(response)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> CascadeResponse:
        self.check_settings(settings)
        if _observe.ACTIVE:  # one call, each tier's requests its attempts
            return _observe.observe_chat(self, messages, settings, lambda: self._chat(messages, settings))
        return self._chat(messages, settings)

    def _chat(self, messages: MessagesInput, settings: Settings) -> CascadeResponse:
        run = _Run(self)
        for index, tier in enumerate(self.tiers):
            try:
                response = tier.chat(messages, **settings)
            except ModelMixError as exc:
                ended = run.failed(index, tier, exc)
            else:
                ended = run.answered(index, tier, response, self._judge(response))
            if ended is not None:
                return ended
        raise AssertionError("unreachable: the last tier always ends the cascade")  # pragma: no cover

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> CascadeResponse:
        self.check_settings(settings)
        if _observe.ACTIVE:
            return await _observe.aobserve_chat(self, messages, settings, lambda: self._achat(messages, settings))
        return await self._achat(messages, settings)

    async def _achat(self, messages: MessagesInput, settings: Settings) -> CascadeResponse:
        run = _Run(self)
        for index, tier in enumerate(self.tiers):
            try:
                response = await tier.achat(messages, **settings)
            except ModelMixError as exc:
                ended = run.failed(index, tier, exc)
            else:
                ended = run.answered(index, tier, response, await self._ajudge(response))
            if ended is not None:
                return ended
        raise AssertionError("unreachable: the last tier always ends the cascade")  # pragma: no cover

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        self.check_settings(settings)
        return _BufferedStream(lambda: self.chat(messages, **settings), provider=self.provider, model=self.name)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        self.check_settings(settings)

        async def answer() -> ChatResponse:
            return await self.achat(messages, **settings)

        return _BufferedAsyncStream(answer, provider=self.provider, model=self.name)


class _Replayed:
    """Buffered streams replay the cascade's answer: `response` is that answer itself (a
    `CascadeResponse`), not one rebuilt from the replayed events."""

    _answer: ChatResponse | None = None
    _state: _StreamState

    def _opened(self, answer: ChatResponse, started: float) -> OpenedStream:
        self._answer = answer
        return OpenedStream(None, _nothing, answer.request_id, None, started, full_response=answer)

    @property
    def response(self) -> ChatResponse:
        self._state.require_response()  # raises until the stream has been read
        assert self._answer is not None
        return self._answer


def _nothing() -> None:
    return None


class _BufferedStream(_Replayed, Stream):
    def __init__(self, run: Callable[[], ChatResponse], *, provider: str, model: str) -> None:
        def open_stream() -> OpenedStream:
            started = time.perf_counter()
            return self._opened(run(), started)

        super().__init__(open_stream, NoByteParser(), provider=provider, model=model)


class _BufferedAsyncStream(_Replayed, AsyncStream):
    def __init__(self, run: Callable[[], Awaitable[ChatResponse]], *, provider: str, model: str) -> None:
        async def open_stream() -> OpenedStream:
            started = time.perf_counter()
            return self._opened(await run(), started)

        super().__init__(open_stream, NoByteParser(), provider=provider, model=model)


def cascade(
    *models: Model | str,
    accept: Accept,
    escalate_on: Callable[[ModelMixError], bool] | None = None,
) -> CascadeModel:
    """``mm.cascade(cheap, strong, accept=lambda r: "I don't know" not in r.text)``.

    Ask each model in turn (strings are built with `modelmix.model`) and keep the first answer
    `accept` passes; the last model's answer is kept whatever `accept` says (``accepted=False``).
    A model that fails the way a fallback chain routes around escalates too (`escalate_on`
    decides otherwise). The response is a `CascadeResponse`: `tier`, `accepted`, `cost_saved`.
    """
    from .._registry import model as build

    check_models("cascade", models)
    return CascadeModel(
        [build(item) if isinstance(item, str) else item for item in models], accept=accept, escalate_on=escalate_on
    )
