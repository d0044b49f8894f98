"""The sans-I/O contract between the HTTP model and a wire format: `WireCodec` and `RequestContext`.

A codec turns one call into a request body and a server's bytes back into typed results. It gets
the whole call — messages, merged settings and the model's `ModelProfile` — so a compatibility
repair (a folded system message, usage counted offline, ``<tool_call>`` text turned into tool
calls) lives in the codec or its stream parser, never in an overridden ``chat``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ._error_context import NO_CONTEXT, ErrorContext
from ._exceptions import APIStatusError
from ._messages import Message
from ._profile import ModelProfile
from ._response import ChatResponse
from ._settings import Settings
from ._streaming import StreamParser

__all__ = ["NO_CONTEXT", "ErrorContext", "Reply", "RequestContext", "WireCodec"]


@dataclass(frozen=True)
class RequestContext:
    """One call as a codec sees it."""

    model: str
    """The model name sent to the server."""
    messages: list[Message]
    settings: Settings
    """The model's settings merged with the call's."""
    profile: ModelProfile
    stream: bool
    origin: str = ""
    """``provider:model@host``: who answers, so opaque reasoning state (`ReasoningState`) goes
    back only where it came from; empty where there is nothing to carry."""


@dataclass(frozen=True)
class Reply:
    """What came back besides the body: the status and headers, the call it answers (None for a
    document such as a listing), the profile, and what the errors it may raise must carry."""

    status: int
    headers: httpx.Headers
    call: RequestContext | None = None
    profile: ModelProfile | None = None
    context: ErrorContext = NO_CONTEXT


class WireCodec(Protocol):
    """Sans-I/O knowledge of one wire protocol."""

    chat_path: str
    """Path of the chat endpoint, relative to the base URL."""

    def build_body(self, call: RequestContext) -> dict[str, Any]:
        """The JSON body for `call`."""

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        """Decode a complete (non-streamed) body, with the repairs the call's profile asks for.
        Raises a typed error, complete with the reply's context, for an error body."""

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        """The typed error for an error response, complete with the reply's context (provider,
        model, host, request id, key hint; credentials redacted)."""

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        """A fresh parser for one streamed call."""
