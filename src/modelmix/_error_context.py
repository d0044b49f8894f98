"""`ErrorContext`: what an error must carry about where it happened, known before it is built.

Codecs, body classifiers and stream parsers receive it and build their errors complete — provider,
model, host, request id, a key hint, the message with any echoed credential removed — so nothing
patches an error after it was raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["NO_CONTEXT", "ErrorContext", "redact_secrets"]

_VISIBLE_RUN = 5
"""The shortest run of a credential's characters that counts as a leak: a hint may show four."""


def redact_secrets(text: str, secrets: tuple[str, ...], *, whole: str = "…", limit: int | None = None) -> str:
    """`text` with every run of five or more characters of any of `secrets` replaced.

    A server may echo a key whole, cut (``sk-proj-abc…``), or masked in the middle; any run of
    five characters or more that also occurs in a key is removed, so no useful part of it is
    left. A whole key becomes `whole` (a hint such as ``…abcd``), a part of one ``…``.

    With `limit`, the result is cut to that many characters — after redacting, so an echo that
    crosses the cut is removed whole rather than cut into a visible prefix.
    """
    secrets = tuple(secret for secret in secrets if secret)
    if limit is not None:
        # Only a key that starts before the cut can show in the result.
        text = text[: limit + max((len(secret) for secret in secrets), default=0)]
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, whole)
        text = _remove_parts(text, secret)
    return text if limit is None else text[:limit]


def _remove_parts(text: str, secret: str) -> str:
    if len(secret) < _VISIBLE_RUN:
        return text
    pieces = {secret[i : i + _VISIBLE_RUN] for i in range(len(secret) - _VISIBLE_RUN + 1)}
    spans: list[tuple[int, int]] = []
    for start in range(len(text) - _VISIBLE_RUN + 1):
        if text[start : start + _VISIBLE_RUN] in pieces:
            end = start + _VISIBLE_RUN
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
    if not spans:
        return text
    kept: list[str] = []
    cursor = 0
    for start, end in spans:
        kept += [text[cursor:start], "…"]
        cursor = end
    kept.append(text[cursor:])
    return "".join(kept)


@dataclass(frozen=True)
class ErrorContext:
    """Everything an error should carry about where it happened, known before it is built, so
    errors leave the classifier complete and are never patched afterwards."""

    provider: str | None = None
    model: str | None = None
    host: str | None = None
    url: str | None = None
    """The address that was called (``scheme://host:port/path``, no credentials, no query)."""
    request_id: str | None = None
    key_hint: str | None = None
    """At most the last characters of the credential, for a 401's message."""
    secrets: tuple[str, ...] = ()
    """Credentials a server may echo back; they never reach an error message."""

    def redact(self, text: str, *, limit: int | None = None) -> str:
        """`text` without any part of a credential (see `redact_secrets`), cut to `limit`."""
        return redact_secrets(text, self.secrets, whole=self.key_hint or "…", limit=limit)

    def redact_optional(self, text: str | None, *, limit: int | None = None) -> str | None:
        return None if text is None else self.redact(text, limit=limit)

    def fields(self, status: int) -> dict[str, Any]:
        """Constructor keywords of an error for `status`."""
        found: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "host": self.host,
            "url": self.url,
            "request_id": self.request_id,
        }
        if status == 401:
            found["key_hint"] = self.key_hint
        return found


NO_CONTEXT = ErrorContext()
