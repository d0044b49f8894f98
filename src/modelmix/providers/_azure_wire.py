"""The OpenAI chat codec with Azure's differences (sans-I/O).

Azure speaks the OpenAI chat protocol on every route; what differs is handled here: the family
profile adapts the body, ``DeploymentNotFound`` names the deployment, an error body sent with HTTP
200 keeps the status it states, and ``x-ratelimit-reset-*`` feed ``retry_after`` when a 429 carries
no ``retry-after(-ms)``. The leading stream chunk with empty ``choices`` and prompt-filter results is
already handled by the OpenAI stream parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from .._exceptions import APIStatusError, NotFoundError, RateLimitError
from .._messages import Message
from .._response import ChatResponse
from .._settings import Settings
from ._azure_profiles import AzureProfile, adapt_messages, check_settings
from ._azure_routes import AzureRoute
from ._error_bodies import error_info, typed_error
from ._openai_wire import OpenAIChatCodec, WireQuirks

__all__ = ["AzureChatCodec", "rate_limit_reset"]

_NOT_FOUND_CODES = ("DeploymentNotFound", "unknown_model", "model_not_found", "NotFound")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


class AzureChatCodec(OpenAIChatCodec):
    """`OpenAIChatCodec` for one Azure deployment on one route, shaped by its family profile."""

    def __init__(self, deployment: str, route: AzureRoute, profile: AzureProfile, host: str) -> None:
        super().__init__(WireQuirks(stream_usage=profile.stream_usage, max_tokens_field=profile.max_tokens_field))
        self.deployment = deployment
        self.route = route
        self.profile = profile
        self.host = host

    def build_body(self, model: str, messages: list[Message], settings: Settings, *, stream: bool) -> dict[str, Any]:
        check_settings(settings, self.profile, self.deployment)
        body = super().build_body(model, adapt_messages(messages, self.profile), settings, stream=stream)
        if not self.route.send_model and "model" not in (settings.get("extra_body") or {}):
            body.pop("model", None)
        return body

    def parse_response(self, data: Any, *, status: int, headers: httpx.Headers) -> ChatResponse:
        if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
            # Azure gateways sometimes send an error body with HTTP 200; the body states the real
            # status (a prompt-filter rejection says 400), which decides retrying.
            stated = data["error"].get("status")
            effective = stated if isinstance(stated, int) and stated >= 400 else (status if status >= 400 else 500)
            info = error_info(data, fallback="the server answered with an error")
            raise self._refine(typed_error(effective, info, headers), headers)
        return super().parse_response(data, status=status, headers=headers)

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIStatusError:
        return self._refine(super().parse_error(status, headers, body), headers)

    def _refine(self, error: APIStatusError, headers: Mapping[str, str]) -> APIStatusError:
        if isinstance(error, NotFoundError) or error.code in _NOT_FOUND_CODES:
            return NotFoundError(
                f"Azure deployment {self.deployment!r} was not found on {self.host} ({self.route.name} route): "
                f"{error.message} Check the deployment name under Deployments in the Azure AI Foundry portal.",
                status=error.status or 404,
                code=error.code,
                error_type=error.error_type,
                retry_after=error.retry_after,
                phase="status",
            )
        if isinstance(error, RateLimitError) and error.retry_after is None:
            error.retry_after = rate_limit_reset(headers)
        return error


def _duration(raw: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"250ms"`` or plain seconds → seconds."""
    text = raw.strip().lower()
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
            return None
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        value = sum(float(n) * scale[u] for n, u in parts)
    return value if value > 0 else None


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted limit resets, from ``x-ratelimit-reset-{requests,tokens}``.

    When a ``x-ratelimit-remaining-*`` header says which limit is at zero, that limit's reset is
    used; otherwise the longer of the two.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        raw = lowered.get(f"x-ratelimit-reset-{kind}")
        value = _duration(raw) if raw is not None else None
        if value is not None:
            resets[kind] = value
    if not resets:
        return None
    exhausted = [kind for kind in resets if lowered.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"]
    chosen = exhausted or list(resets)
    return max(resets[kind] for kind in chosen)
