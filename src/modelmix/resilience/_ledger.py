"""A budget's books: what was spent, what calls in flight have reserved, and the refusal.

Sans-I/O and shared by threads and tasks alike: every change is a few additions under one
`threading.Lock`, never held across an await or a call to a model. A call reserves its worst case
before it is sent and settles when its real cost is known, so the money spent plus the money
reserved never exceeds the budget, however many calls run at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from .._error_tree import ModelMixError

__all__ = ["BudgetExceededError", "BudgetLedger", "Reservation", "usd"]


def usd(amount: Decimal | None) -> str:
    """A dollar amount for messages: cents for most, more digits for fractions of a cent."""
    if amount is None:
        return "unknown"
    if amount == 0 or abs(amount) >= Decimal("0.01"):
        return f"${amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"${amount:.4f}"
    return f"${amount:.6f}".rstrip("0")


class BudgetExceededError(ModelMixError):
    """A budget refused a call before sending it: its worst case does not fit what is left, or
    (``needed`` None) the model's prices are unknown, so its cost could not be bounded.

    `spent`, `reserved` (by calls still in flight), `left` and `needed` are USD `Decimal` values;
    `max_usd` is the budget. A fallback chain inside the budget moves on to its next member (a
    cheaper one may fit).
    """

    def __init__(
        self,
        message: str,
        *,
        max_usd: Decimal,
        spent: Decimal,
        reserved: Decimal,
        needed: Decimal | None,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.max_usd = max_usd
        self.spent = spent
        self.reserved = reserved
        self.left = max_usd - spent - reserved
        self.needed = needed
        self.provider = provider
        self.model = model


BudgetExceededError.__module__ = "modelmix"


@dataclass
class Reservation:
    """Money set aside for one call until it settles."""

    amount: Decimal
    settled: bool = False
    lease: str = ""
    """A shared budget's name for it in the store ("" for a process's own books)."""


@dataclass(frozen=True)
class BudgetSnapshot:
    max_usd: Decimal
    spent: Decimal
    reserved: Decimal

    @property
    def left(self) -> Decimal:
        return self.max_usd - self.spent - self.reserved


class BudgetLedger:
    """The books of one budget of `max_usd` dollars."""

    def __init__(self, max_usd: Decimal) -> None:
        self.max_usd = max_usd
        self._spent = Decimal(0)
        self._reserved = Decimal(0)
        self._peak = Decimal(0)
        self._lock = threading.Lock()

    def snapshot(self) -> BudgetSnapshot:
        with self._lock:
            return BudgetSnapshot(self.max_usd, self._spent, self._reserved)

    @property
    def peak(self) -> Decimal:
        """The most ever spent plus reserved at one moment (never above `max_usd` when every
        call's real cost stayed within its worst case)."""
        with self._lock:
            return self._peak

    def left_hint(self) -> Decimal:
        """What is left, for sizing a reservation (a shared ledger answers from its last reading)."""
        return self.snapshot().left

    def try_reserve(self, amount: Decimal, lease_seconds: float | None = None) -> Reservation | None:
        """Set `amount` aside if it fits what is left; None if it does not. `lease_seconds` is how
        long a shared budget may hold it (None: the budget's default); a process's own books die
        with it, so they ignore it."""
        with self._lock:
            if self._spent + self._reserved + amount > self.max_usd:
                return None
            self._reserved += amount
            self._peak = max(self._peak, self._spent + self._reserved)
        return Reservation(amount)

    async def atry_reserve(self, amount: Decimal, lease_seconds: float | None = None) -> Reservation | None:
        """`try_reserve` for async callers (a shared ledger asks its store without blocking the loop)."""
        return self.try_reserve(amount, lease_seconds)

    def settle(self, reservation: Reservation, cost: Decimal) -> None:
        """The call is over and cost `cost`: the rest of its reservation goes back. Only the
        first settlement of a reservation counts."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._reserved -= reservation.amount
            self._spent += cost
            self._peak = max(self._peak, self._spent + self._reserved)

    def charge(self, cost: Decimal) -> None:
        """Record money spent by a call that reserved nothing (an unpriced model allowed in)."""
        with self._lock:
            self._spent += cost
            self._peak = max(self._peak, self._spent + self._reserved)
