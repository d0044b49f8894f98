"""The OpenAI codecs with Azure's differences (sans-I/O).

Azure speaks the OpenAI chat protocol on every route, and the Responses API on its v1 route. The
profile (system-role folding, the ``max_tokens`` field, ``stream_options``) and the error bodies
(an error sent with HTTP 200 keeps the status it states, ``x-ratelimit-reset-*`` feed
``retry_after``) are handled by the shared codecs and body classifier; what is left here is the
route (some routes must not name the model in the body) and a ``DeploymentNotFound`` that names
the deployment and where to look for it.
"""

from __future__ import annotations

from typing import Any

from .._codec import ErrorContext, Reply, RequestContext, WireCodec
from .._exceptions import APIStatusError, NotFoundError
from .._response import ChatResponse
from .._streaming import StreamParser
from ._azure_routes import AzureRoute
from ._error_bodies import rate_limit_reset

__all__ = ["AzureCodec", "rate_limit_reset"]

_NOT_FOUND_CODES = ("DeploymentNotFound", "unknown_model", "model_not_found", "NotFound")


class AzureCodec:
    """A wire codec (`OpenAIChatCodec`, or `ResponsesCodec` on the v1 route) for one Azure
    deployment on one route."""

    def __init__(self, inner: WireCodec, deployment: str, route: AzureRoute, host: str) -> None:
        self.inner = inner
        self.chat_path = inner.chat_path
        self.deployment = deployment
        self.route = route
        self.host = host

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        body = self.inner.build_body(call)
        if not self.route.send_model and "model" not in (call.settings.get("extra_body") or {}):
            body.pop("model", None)
        return body

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        try:
            return self.inner.parse_response(data, reply)
        except APIStatusError as error:
            raise self._not_found(error, reply.context) from None

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return self._not_found(self.inner.parse_error(body, reply), reply.context)

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        return self.inner.stream_parser(call)

    def _not_found(self, error: APIStatusError, context: ErrorContext) -> APIStatusError:
        if not (isinstance(error, NotFoundError) or error.code in _NOT_FOUND_CODES):
            return error
        return NotFoundError(
            f"Azure deployment {self.deployment!r} was not found on {self.host} ({self.route.name} route): "
            f"{error.message} Check the deployment name under Deployments in the Azure AI Foundry portal.",
            status=error.status or 404,
            code=error.code,
            error_type=error.error_type,
            retry_after=error.retry_after,
            phase="status",
            **context.fields(404),
        )
