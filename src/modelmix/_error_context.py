"""`ErrorContext`: what an error must carry about where it happened, known before it is built.

Codecs, body classifiers and stream parsers receive it and build their errors complete — provider,
model, host, request id, a key hint, the message with any echoed credential removed — so nothing
patches an error after it was raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NO_CONTEXT", "ErrorContext"]


@dataclass(frozen=True)
class ErrorContext:
    """Everything an error should carry about where it happened, known before it is built, so
    errors leave the classifier complete and are never patched afterwards."""

    provider: str | None = None
    model: str | None = None
    host: str | None = None
    request_id: str | None = None
    key_hint: str | None = None
    """At most the last characters of the credential, for a 401's message."""
    secrets: tuple[str, ...] = ()
    """Credentials a server may echo back; they never reach an error message."""

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret and secret in text:
                text = text.replace(secret, self.key_hint or "…")
        return text

    def fields(self, status: int) -> dict[str, Any]:
        """Constructor keywords of an error for `status`."""
        found: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "host": self.host,
            "request_id": self.request_id,
        }
        if status == 401:
            found["key_hint"] = self.key_hint
        return found


NO_CONTEXT = ErrorContext()
