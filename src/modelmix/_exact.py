"""The decimal context every cost is computed in.

The caller's own decimal context (precision, traps) is never read or changed: each operation names
`EXACT`, whose 60 digits hold any realistic bill exactly. Inexact is a trap, so a cost that would
need rounding raises instead of drifting silently.
"""

from __future__ import annotations

from decimal import Context, Inexact, InvalidOperation, Overflow

__all__ = ["EXACT"]

EXACT = Context(prec=60, traps=[InvalidOperation, Overflow, Inexact])
