"""`ClientRateLimitError`, in a module of its own so the fault table can name it without
importing the rate limiter."""

from __future__ import annotations

from .._error_tree import ModelMixError

__all__ = ["ClientRateLimitError"]


class ClientRateLimitError(ModelMixError):
    """A client-side rate limit (``mm.rate_limit``) held a call back longer than its deadline or
    ``max_wait`` allows (or, with ``limit_outage="refuse"``, its shared store is unreachable).
    Nothing was sent. `limit` names which one ("rpm", "tpm", "concurrency", "store"); `retry_after`
    is the wait it asked for in seconds (None when unknown). A fallback chain moves on to its next
    member instead of waiting.
    """

    def __init__(self, message: str, *, scope: str, limit: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.retry_after = retry_after


ClientRateLimitError.__module__ = "modelmix"
