"""`mm.budget(model_or_chain, max_usd=...)`: a spending limit that is never overshot.

Before a call is sent its worst case is reserved: the prompt's tokens plus the longest answer it
may get (``max_tokens``, else the model's longest answer, else the rest of its context window),
at list price, times the attempts a structured-output re-ask may add. When the call ends the real
cost is charged and the rest goes back. A call whose worst case does not fit what is left is
refused with `BudgetExceededError`, nothing sent.

The prompt is tokenized only when needed: the worst case is first bounded from the request's
UTF-8 size (a token is never shorter than a byte); only when that bound is more than 1 % of what
is left is the prompt counted. A model whose prices are unknown can't be bounded: refused unless
``allow_unpriced=True`` (its calls then reserve nothing, and their cost is charged when reported).

A budget that names a scope keeps its books in a shared store, where each reservation is a
lease: held for the call's deadline plus `LEASE_MARGIN`, or `lease_seconds` when the call has no
deadline, after which the store gives it back by itself — a worker killed mid-call can't shrink
the budget for good.

The guard sits where each model is really called: inside a retrying model (every retry reserves
again), on each member of a fallback chain (a member that does not fit moves the chain on, to a
cheaper one perhaps), on each tier of a cascade and on both models of a hedge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .._exceptions import AllModelsFailedError, APIStatusError, ConfigurationError
from .._messages import Message, MessagesInput, to_messages
from .._model import Model
from .._preflight import ESTIMATE_ERROR, model_max_output, payload_bytes, upper_bound
from .._response import ChatResponse, Usage
from .._settings import Settings, merge_settings
from .._streaming import AsyncStream, Stream
from .._structured import OutputError, output_plan
from ..tokens import cost_of, model_info

if TYPE_CHECKING:
    from ..tokens._counting import TokenCount
    from ._state_store import StateStore
from ._clock import SYSTEM_CLOCK, effective_deadline
from ._fallback import FallbackModel
from ._faults import fault_kind
from ._hedge import HedgedModel
from ._holding import HoldingModel
from ._ledger import BudgetExceededError, BudgetLedger, BudgetSnapshot, Reservation, usd
from ._retrying import ResilientModel
from ._state_store import BUDGET_LEASE_SECONDS, check_lease_seconds
from ._wrapper import WrapperModel

__all__ = ["BudgetModel", "budget"]

_MILLION = Decimal(1_000_000)
_BOUND_SHARE = Decimal("0.01")
"""A worst case from the byte bound is reserved only when it is at most this share of what is left;
otherwise the prompt is counted first."""
LEASE_MARGIN = 60.0
"""Seconds a shared reservation outlives its call's deadline: room for the settlement, which
runs on a background thread after the call, to reach the store (or wait out a short outage)."""
# Failures that prove no tokens were generated: nothing was sent, or the server refused the request.
_UNBILLED = frozenset(
    {
        "connect_failed",
        "pool_timeout",
        "tls",
        "unsupported_capability",
        "context_wont_fit",
        "budget_exceeded",
        "circuit_open",
        "retry_budget_exhausted",
        "configuration",
    }
)


def _decimal(value: Any) -> Decimal:
    """USD amounts as Decimal, whether the catalog gives floats or Decimals."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class ListPrices:
    """USD per million tokens: the highest a prompt token may cost, and an answer token."""

    input: Decimal
    output: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (input_tokens * self.input + output_tokens * self.output) / _MILLION


def list_prices(model: Model) -> ListPrices | None:
    """`model`'s list prices from the catalog, or None when they are unknown."""
    inner = model.unwrap()
    info = model_info(f"{inner.provider}:{inner.name}")
    if info is None or info.input_per_mtok is None or info.output_per_mtok is None:
        return None
    prompt = _decimal(info.input_per_mtok)
    # Writing the provider's prompt cache may cost more than a plain prompt token.
    write = getattr(info, "cache_write_per_mtok", None)
    if write is not None:
        prompt = max(prompt, _decimal(write))
    return ListPrices(prompt, _decimal(info.output_per_mtok))


@dataclass(frozen=True)
class WorstCase:
    """The most one call may cost: `calls` requests of `input_tokens` + `output_tokens` each."""

    input_tokens: int
    output_tokens: int
    output_source: str
    calls: int
    cost: Decimal

    def describe(self) -> str:
        times = f" × {self.calls} attempts (output_retries re-asks)" if self.calls > 1 else ""
        return (
            f"{self.input_tokens} prompt tokens + {self.output_tokens} answer tokens ({self.output_source}) "
            f"at list price{times}"
        )


@dataclass(frozen=True)
class _Request:
    """One call as the budget sees it."""

    messages: list[Message]
    settings: Mapping[str, Any]
    extra_prompt: int
    """Prompt tokens structured output may add (its schema and instructions)."""
    calls: int


def _request(model: Model, messages: MessagesInput, call_settings: Mapping[str, Any]) -> _Request:
    settings = merge_settings(model.settings, call_settings)
    plan = output_plan(call_settings, model)
    if plan is None:
        return _Request(to_messages(messages), settings, 0, 1)
    schema = len(json.dumps(plan.spec.schema).encode("utf-8"))
    # The schema travels once as a format or tool and once more in instructions for weaker strategies.
    return _Request(to_messages(messages), settings, 2 * schema + 512, 1 + plan.retries)


@dataclass(frozen=True)
class _Pending:
    """A reservation that needs the prompt counted first."""

    prices: ListPrices
    request: _Request
    bound: int


class _BudgetGuard(HoldingModel["Reservation | None"]):
    """Reserves each call's worst case on `ledger` before `wrapped` is called; settles after."""

    def __init__(self, wrapped: Model, ledger: BudgetLedger, *, allow_unpriced: bool) -> None:
        super().__init__(wrapped)
        self.ledger = ledger
        self.allow_unpriced = allow_unpriced

    def __repr__(self) -> str:
        return f"<budget guard of {self.wrapped!r}>"

    # ------------------------------------------------------------------------- reserving

    def _worst_case(self, prices: ListPrices, request: _Request, prompt: int, exact: bool) -> WorstCase:
        output = self._output_bound(request.settings, prompt if exact else None)
        calls = request.calls
        tokens = prompt + request.extra_prompt
        return WorstCase(tokens, output[0], output[1], calls, prices.cost(tokens, output[0]) * calls)

    def _output_bound(self, settings: Mapping[str, Any], exact_prompt: int | None) -> tuple[int, str]:
        max_tokens = settings.get("max_tokens")
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            return max_tokens, "max_tokens"
        longest = model_max_output(self.wrapped)
        if longest is not None:
            return longest, "the model's longest answer"
        window = self.wrapped.context_window
        if window is None:  # a model that does not read the catalog itself (a test double...)
            info = model_info(self._who())
            window = info.context_window if info is not None else None
        if window is not None:
            return max(window - (exact_prompt or 0), 0), "the rest of the context window"
        inner = self.wrapped.unwrap()
        raise ConfigurationError(
            f"the budget can't bound the answer of {inner.provider}:{inner.name}: set max_tokens on the call or "
            "the model (settings={'max_tokens': ...}), since neither its longest answer nor its context window "
            "is known"
        )

    def _first_amount(
        self, messages: MessagesInput, settings: Mapping[str, Any]
    ) -> tuple[Decimal | None, _Pending | None]:
        """What to reserve on the cheap byte bound (None: nothing to try that way), and what the
        exact attempt needs when that is refused or too large (None: no exact attempt: the call
        reserves nothing, or the cheap amount is all there is)."""
        prices = list_prices(self.wrapped)
        if prices is None:
            if self.allow_unpriced:
                return None, None
            raise self._unpriced()
        if prices.input == 0 and prices.output == 0:
            return Decimal(0), None
        request = _request(self.wrapped, messages, settings)
        tools = len(request.settings.get("tools") or ())
        bound = upper_bound(request.messages, payload_bytes(request.messages, request.settings), tools)
        rough = self._worst_case(prices, request, bound, exact=False).cost
        # The bound overstates a prompt several times over: reserving it is harmless only while it is
        # a sliver of what is left, else concurrent calls would be refused for money they never need.
        return (rough if rough <= self.ledger.left_hint() * _BOUND_SHARE else None), _Pending(prices, request, bound)

    def _exact_worst(self, pending: _Pending, counted: TokenCount) -> WorstCase:
        tokens = counted.tokens
        # An estimate is taken high (never above the byte bound, which no prompt exceeds).
        prompt = tokens if counted.exact else min(pending.bound, math.ceil(tokens / (1 - ESTIMATE_ERROR)))
        return self._worst_case(pending.prices, pending.request, prompt, exact=counted.exact)

    def _count_options(self, request: _Request) -> dict[str, Any]:
        options: dict[str, Any] = {"use_server": False}
        if request.settings.get("tools"):
            options["tools"] = request.settings["tools"]
        if request.settings.get("response_format") is not None:
            options["response_format"] = request.settings["response_format"]
        return options

    def _lease_seconds(self, *, in_async: bool) -> float | None:
        """How long the call about to go may hold a shared reservation: its deadline (a chain's,
        a retrying model's, the caller's cancel scope) plus `LEASE_MARGIN`; None when it has none
        (the budget's `lease_seconds` applies), or when the books are this process's own."""
        if type(self.ledger) is BudgetLedger:
            return None  # nothing outlives this process's own books: no deadline to look up
        left = effective_deadline(SYSTEM_CLOCK, None, in_async=in_async).remaining()
        return None if math.isinf(left) else max(left, 0.0) + LEASE_MARGIN

    def _take(self, messages: MessagesInput, settings: Mapping[str, Any]) -> Reservation | None:
        amount, pending = self._first_amount(messages, settings)
        lease = self._lease_seconds(in_async=False)
        if amount is not None:
            reservation = self.ledger.try_reserve(amount, lease)
            if reservation is not None or pending is None:
                return reservation
        if pending is None:
            return None
        from ..tokens._counting import count_tokens

        request = pending.request
        worst = self._exact_worst(
            pending, count_tokens(request.messages, model=self.wrapped, **self._count_options(request))
        )
        reservation = self.ledger.try_reserve(worst.cost, lease)
        if reservation is None:
            raise self._refusal(worst)
        return reservation

    async def _atake(self, messages: MessagesInput, settings: Mapping[str, Any]) -> Reservation | None:
        # The same steps as `_take`, through the ledger's async forms (a shared store's asyncio client).
        amount, pending = self._first_amount(messages, settings)
        lease = self._lease_seconds(in_async=True)
        if amount is not None:
            reservation = await self.ledger.atry_reserve(amount, lease)
            if reservation is not None or pending is None:
                return reservation
        if pending is None:
            return None
        from ..tokens._counting import acount_tokens

        request = pending.request
        counted = await acount_tokens(request.messages, model=self.wrapped, **self._count_options(request))
        worst = self._exact_worst(pending, counted)
        reservation = await self.ledger.atry_reserve(worst.cost, lease)
        if reservation is None:
            raise self._refusal(worst)
        return reservation

    def _who(self) -> str:
        inner = self.wrapped.unwrap()
        return f"{inner.provider}:{inner.name}"

    def _refusal(self, worst: WorstCase) -> BudgetExceededError:
        books = self.ledger.snapshot()
        return self._error(
            books,
            worst.cost,
            f"the budget can't cover this call to {self._who()}: it may cost up to {usd(worst.cost)} "
            f"({worst.describe()}), and {usd(books.left)} of {usd(books.max_usd)} is left ({usd(books.spent)} "
            f"spent, {usd(books.reserved)} reserved by calls in flight); nothing was sent — lower max_tokens, "
            "shorten the prompt or use a cheaper model",
        )

    def _unpriced(self) -> BudgetExceededError:
        return self._error(
            self.ledger.snapshot(),
            None,
            f"the budget can't bound a call to {self._who()}: its prices are unknown; register them with "
            "mm.register_model_info(...), or pass allow_unpriced=True to mm.budget to let its calls through "
            "uncounted until they report a cost",
        )

    def _error(self, books: BudgetSnapshot, needed: Decimal | None, message: str) -> BudgetExceededError:
        inner = self.wrapped.unwrap()
        return BudgetExceededError(
            message,
            max_usd=books.max_usd,
            spent=books.spent,
            reserved=books.reserved,
            needed=needed,
            provider=inner.provider,
            model=inner.name,
        )

    # -------------------------------------------------------------------------- settling

    def _cost_of(self, response: ChatResponse) -> Decimal | None:
        if response.cost is not None:
            return _decimal(response.cost)
        return self._usage_cost(response.usage)

    def _usage_cost(self, usage: Usage | None) -> Decimal | None:
        if usage is None:
            return None
        priced = cost_of(self._who(), usage)
        if priced is not None:
            return _decimal(priced)
        prices = list_prices(self.wrapped)
        return prices.cost(usage.input_tokens, usage.output_tokens) if prices is not None else None

    def _give_back(
        self, reservation: Reservation | None, response: ChatResponse | None, error: BaseException | None
    ) -> None:
        if response is not None:
            cost = self._cost_of(response)
        elif isinstance(error, OutputError) and (error.cost is not None or error.usage is not None):
            cost = _decimal(error.cost) if error.cost is not None else self._usage_cost(error.usage)
        elif isinstance(error, APIStatusError) or (error is not None and fault_kind(error) in _UNBILLED):
            cost = Decimal(0)
        else:
            cost = None  # it may have been billed for tokens nobody reported: keep the worst case
        if reservation is None:
            if cost:
                self.ledger.charge(cost)
            return
        self.ledger.settle(reservation, reservation.amount if cost is None else cost)


def _guarded(model: Model, ledger: BudgetLedger, allow_unpriced: bool) -> Model:
    """`model` with a guard wherever a model is really called (see the module's docstring)."""
    from ._cascade import CascadeModel

    def inside(member: Model) -> Model:
        return _guarded(member, ledger, allow_unpriced)

    if isinstance(model, BudgetModel):
        # A budget inside a budget: its guards stay, and each gets one of this budget's around it.
        return inside(model.wrapped)
    if isinstance(model, FallbackModel):
        return FallbackModel(
            [inside(member) for member in model.models],
            deadline=model.deadline,
            min_attempt_time=model.min_attempt_time,
            fall_back_on=model.fall_back_on,
            fallback_on_content_filter=model.fallback_on_content_filter,
            clock=model.clock,
        )
    if isinstance(model, CascadeModel):
        return model.with_tiers([inside(tier) for tier in model.tiers])
    if isinstance(model, ResilientModel):
        return model.replace(inner=inside(model.wrapped))
    if isinstance(model, HedgedModel):
        # The backup races the primary: each request reserves its own worst case at its own prices.
        hedged = HedgedModel(
            inside(model.primary),
            inside(model.backup),
            after=model.after,
            initial_after=model.initial_after,
            min_samples=model.min_samples,
            deadline=model.deadline,
            clock=model.clock,
            budget=model.budget,
        )
        hedged.ttft = model.ttft  # keep what it learned of the primary's time to first token
        return hedged
    return _BudgetGuard(model, ledger, allow_unpriced=allow_unpriced)


class BudgetModel(WrapperModel):
    """A model or chain whose calls stay within `max_usd` dollars. See `budget`.

    `spent`, `reserved` (by calls in flight) and `left` are USD `Decimal` amounts.
    """

    def __init__(
        self,
        model: Model,
        *,
        max_usd: Decimal,
        allow_unpriced: bool = False,
        scope: str | None = None,
        store: StateStore | None = None,
        lease_seconds: float = BUDGET_LEASE_SECONDS,
    ) -> None:
        self.scope = scope
        self.lease_seconds = check_lease_seconds("budget", lease_seconds)
        if scope is None:
            self.ledger = BudgetLedger(max_usd)
        else:
            from ._shared import SharedLedger, current_store

            # Named: the books live in the shared store, one set per scope for every process.
            self.ledger = SharedLedger(
                max_usd, store=store or current_store(), scope=scope, lease_seconds=self.lease_seconds
            )
        self.allow_unpriced = allow_unpriced
        super().__init__(_guarded(model, self.ledger, allow_unpriced))

    @property
    def max_usd(self) -> Decimal:
        return self.ledger.max_usd

    @property
    def spent(self) -> Decimal:
        return self.ledger.snapshot().spent

    @property
    def reserved(self) -> Decimal:
        return self.ledger.snapshot().reserved

    @property
    def left(self) -> Decimal:
        return self.ledger.snapshot().left

    def snapshot(self) -> BudgetSnapshot:
        """Spent, reserved and left at one instant (read together, under the budget's lock)."""
        return self.ledger.snapshot()

    def __repr__(self) -> str:
        books = self.ledger.snapshot()
        return f"<BudgetModel {usd(books.spent)} spent of {usd(books.max_usd)} over {self.wrapped!r}>"

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return _one_refusal(lambda: self.wrapped.chat(messages, **settings))

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return await _aone_refusal(lambda: self.wrapped.achat(messages, **settings))

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        return self.wrapped.stream(messages, **settings)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        return self.wrapped.astream(messages, **settings)


def _every_member_refused(error: AllModelsFailedError) -> BudgetExceededError | None:
    """One `BudgetExceededError` for a chain none of whose members fit the budget."""
    refusals = [e for e in error.exceptions if isinstance(e, BudgetExceededError)]
    if not refusals or len(refusals) != len(error.exceptions):
        return None
    first = refusals[0]
    needs = "; ".join(f"{r.provider}:{r.model} needs {usd(r.needed)}" for r in refusals)
    known = [r.needed for r in refusals if r.needed is not None]
    summary = BudgetExceededError(
        f"no model of the chain fits the budget: {needs}; {usd(first.left)} of {usd(first.max_usd)} is left "
        f"({usd(first.spent)} spent, {usd(first.reserved)} reserved); nothing was sent",
        max_usd=first.max_usd,
        spent=first.spent,
        reserved=first.reserved,
        needed=min(known) if known else None,
    )
    summary.attempts = list(error.attempts)
    return summary


def _one_refusal(call: Callable[[], ChatResponse]) -> ChatResponse:
    try:
        return call()
    except AllModelsFailedError as failed:
        summary = _every_member_refused(failed)
        if summary is None:
            raise
        raise summary from failed


async def _aone_refusal(call: Callable[[], Awaitable[ChatResponse]]) -> ChatResponse:
    try:
        return await call()
    except AllModelsFailedError as failed:
        summary = _every_member_refused(failed)
        if summary is None:
            raise
        raise summary from failed


def budget(
    model: Model | str,
    *,
    max_usd: Decimal | float | int | str,
    allow_unpriced: bool = False,
    scope: str | None = None,
    store: StateStore | None = None,
    lease_seconds: float = BUDGET_LEASE_SECONDS,
) -> BudgetModel:
    """``mm.budget(model_or_chain, max_usd=5)``: `model`'s calls may spend at most `max_usd` dollars.

    Each call reserves its worst case (prompt + ``max_tokens`` at list price) before it is sent and
    is charged its real cost after; a call that does not fit what is left raises
    `BudgetExceededError`, nothing sent. In a fallback chain each member is checked when it is
    tried, so the chain falls through to a member that fits. A model with unknown prices is
    refused unless ``allow_unpriced=True``. Sync, async and streams; safe across threads and tasks.

    A budget that names a `scope` keeps its books in the shared store (``mm.shared_state(...)``,
    or `store`): every budget with that scope, in every process using the store, spends from one
    `max_usd`, and the worst-case reservation is atomic there, so N workers never overspend it.
    Each reservation is held there for the call's deadline plus a minute, or `lease_seconds`
    (600) when the call has no deadline: a worker that dies mid-call gives its reservation back
    then. Set `lease_seconds` above your longest call without a deadline.
    """
    from .._registry import model as build

    amount = _check_amount(max_usd)
    if isinstance(model, str):
        model = build(model)
    if not isinstance(model, Model):
        raise ConfigurationError(
            f"budget() takes a model or a chain (a Model or a 'provider:model' string), not {type(model).__name__}"
        )
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ConfigurationError(f"budget(scope={scope!r}): a non-empty string naming the shared budget, or None")
    return BudgetModel(
        model, max_usd=amount, allow_unpriced=allow_unpriced, scope=scope, store=store, lease_seconds=lease_seconds
    )


def _check_amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, float, int, str)):
        raise ConfigurationError(f"max_usd must be a number of dollars (e.g. 5 or Decimal('0.50')), not {value!r}")
    try:
        amount = _decimal(value)
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0:
        raise ConfigurationError(f"max_usd must be a positive, finite number of dollars, not {value!r}")
    return amount
