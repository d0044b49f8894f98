"""What the cloud presets share: provider-specific options on top of the connection options, an
API key they cannot work without, their own prices, listings that come as a bare list, error
bodies whose useful part sits beside ``message`` (OpenRouter's ``metadata``, Groq's
``failed_generation``), answers whose ``content`` is a list of typed parts (Databricks, Mistral's
reasoning models), and the cost a server reports in ``usage.cost`` (OpenRouter).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from .._exceptions import ConfigurationError
from ._compat_quirks import repairing_parser
from ._listing import AvailableModel, aget_json, listing_request
from ._openai_wire import REASONING_KEYS, OpenAIChatCodec, OpenAIStreamParser, collecting
from ._provider import Provider, model_option_names, reject_unknown_options, split_connection_options

if TYPE_CHECKING:
    from .._codec import Reply, RequestContext, WireCodec
    from .._events import StreamEvent
    from .._exceptions import APIStatusError
    from .._http import HTTPModel
    from .._response import ChatResponse
    from .._streaming import StreamParser

__all__ = ["CloudCodec", "CloudProvider", "CloudStreamParser", "ErrorDetails", "flatten_content_parts"]

ErrorDetails = Callable[[Mapping[str, Any]], "str | None"]
"""Reads the part of an ``{"error": {...}}`` object that says more than its ``message``."""

_MAX_DETAILS = 500
"""How much of a detail (a failed generation, an upstream message) joins the error message."""


class CloudCodec(OpenAIChatCodec):
    """OpenAI chat completions with two repairs a cloud may need:

    - `details`: error messages also carry what the provider puts beside ``message``, so the one
      line a user reads says why, not only "Provider returned error";
    - `content_parts`: answers whose ``content`` is a list of typed parts (Databricks' reasoning
      models, Mistral's Magistral) become text and reasoning like everyone else's;
    - `reported_cost`: the USD cost the server put in ``usage.cost`` is the response's `cost`
      (the vendor knows what it charged; the catalog does not have its prices).
    """

    def __init__(
        self, details: ErrorDetails | None = None, *, content_parts: bool = False, reported_cost: bool = False
    ) -> None:
        self._details = details
        self._content_parts = content_parts
        self._reported_cost = reported_cost

    def parse_response(self, data: Any, reply: Reply) -> ChatResponse:
        response = super().parse_response(_flattened_body(data) if self._content_parts else data, reply)
        cost = usage_cost(data.get("usage")) if self._reported_cost else None
        return response if cost is None else response.model_copy(update={"cost": cost})

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return super().parse_error(_with_details(body, self._details) if self._details else body, reply)

    def stream_parser(self, call: RequestContext | None = None) -> StreamParser:
        if not self._content_parts and not self._reported_cost:
            return super().stream_parser(call)
        parser = CloudStreamParser(content_parts=self._content_parts, reported_cost=self._reported_cost)
        return repairing_parser(collecting(parser, call), call) if call is not None else parser


def usage_cost(usage: Any) -> Decimal | None:
    """The USD cost in a ``usage`` object (None when it has none, or not as a number)."""
    cost = usage.get("cost") if isinstance(usage, Mapping) else None
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or cost < 0:
        return None
    return Decimal(str(cost))


class CloudStreamParser(OpenAIStreamParser):
    """Stream chunks whose ``delta.content`` may be a list of typed parts, and whose usage may
    carry the cost, which the finished response then has."""

    def __init__(self, *, content_parts: bool, reported_cost: bool) -> None:
        super().__init__()
        self._content_parts = content_parts
        self._reports_cost = reported_cost
        self._cost: Decimal | None = None

    def completed(self, response: ChatResponse) -> ChatResponse:
        response = super().completed(response)
        return response if self._cost is None else response.model_copy(update={"cost": self._cost})

    def _on_payload(self, payload: Mapping[str, Any], event_type: str | None, out: list[StreamEvent]) -> None:
        if self._reports_cost and payload.get("usage") is not None:
            self._cost = usage_cost(payload["usage"]) or self._cost
        super()._on_payload(payload, event_type, out)

    def _on_choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if self._content_parts and isinstance(delta, Mapping) and type(delta.get("content")) is list:
            choice = {**choice, "delta": flatten_content_parts(delta)}
        super()._on_choice(choice, out)


def flatten_content_parts(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A message (or delta) whose ``content`` is a list of parts, as one with text ``content`` and
    the reasoning parts' text as ``reasoning_content``. Shapes: ``{"type": "text", "text"}``;
    Databricks ``{"type": "reasoning", "summary": [{"type": "summary_text", "text"}]}``; Mistral
    ``{"type": "thinking", "thinking": [{"type": "text", "text"}]}``. Other parts are left out."""
    content = message.get("content")
    if type(content) is not list:
        return message
    texts: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("reasoning", "thinking"):
            inner = part.get("summary" if kind == "reasoning" else "thinking")
            pieces = inner if isinstance(inner, list) else [inner]
            thoughts += [p["text"] for p in pieces if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
            thoughts += [p for p in pieces if isinstance(p, str)]
    flat: dict[str, Any] = {**message, "content": "".join(texts) if texts else None}
    if thoughts and not any(message.get(key) for key in REASONING_KEYS):
        flat["reasoning_content"] = "".join(thoughts)
    return flat


def _flattened_body(data: Any) -> Any:
    choices = data.get("choices") if isinstance(data, Mapping) else None
    if not isinstance(choices, list) or not any(
        isinstance(c, Mapping) and isinstance(c.get("message"), Mapping) and type(c["message"].get("content")) is list
        for c in choices
    ):
        return data
    fixed = [
        {**c, "message": flatten_content_parts(c["message"])}
        if isinstance(c, Mapping) and isinstance(c.get("message"), Mapping)
        else c
        for c in choices
    ]
    return {**data, "choices": fixed}


def _with_details(body: bytes, details: ErrorDetails) -> bytes:
    """The error body with `details` appended to ``error.message`` (unchanged when there are none)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return body
    extra = details(error)
    if not extra:
        return body
    extra = extra if len(extra) <= _MAX_DETAILS else extra[:_MAX_DETAILS] + "…"
    # The body is rebuilt rather than the error patched afterwards: the classifier still sees
    # every field (code, type, param) and builds the error once.
    return json.dumps({**data, "error": {**error, "message": f"{error['message']} ({extra})"}}).encode()


class CloudProvider(Provider):
    """A hosted OpenAI-compatible API: a key is required, and a provider may take options of its
    own (named in `provider_options`) besides the connection options."""

    # A hosted service: nothing works without a credential, and ``modelmix models`` reports it as
    # configured without calling it. Providers with other credentials override `resolve_auth`.
    api_key_required = True
    own_prices = True
    provider_options: ClassVar[tuple[str, ...]] = ()
    """Keyword options the provider's ``__init__`` takes besides the connection options."""

    @classmethod
    def create_model(cls, name: str, **options: Any) -> HTTPModel:
        from .._http import HTTPModel

        if not name:
            raise ConfigurationError(f"{cls.name}: no model named; write it as '{cls.name}:<model>'")
        reject_unknown_options(cls.name, options, model_option_names() | set(cls.provider_options))
        own = {key: options.pop(key) for key in cls.provider_options if key in options}
        connection, rest = split_connection_options(options)
        return HTTPModel(name, provider=cls(**own, **connection), **rest)

    def error_details(self, error: Mapping[str, Any]) -> str | None:
        """What this provider's error objects say beyond ``message`` (None: nothing more)."""
        return None

    content_parts_answers: ClassVar[bool] = False
    """Answers may hold ``content`` as a list of typed parts (text, reasoning) to flatten."""
    reports_cost: ClassVar[bool] = False
    """Answers carry their USD cost in ``usage.cost``, which becomes the response's cost."""

    def codec(self, model_name: str) -> WireCodec:
        base = super().codec(model_name)
        details = None if type(self).error_details is CloudProvider.error_details else self.error_details
        repairs = details is not None or self.content_parts_answers or self.reports_cost
        if type(base) is not OpenAIChatCodec or not repairs:
            return base  # another wire protocol (or nothing to repair): as the base provider says
        return CloudCodec(details, content_parts=self.content_parts_answers, reported_cost=self.reports_cost)

    async def alist_models(self) -> list[AvailableModel]:
        """Async listing; an exchanged token (OAuth, Google credentials) is fetched without
        blocking the event loop, as for chat calls."""
        if self.auth.static or self.listing_path is None:
            return await super().alist_models()
        headers = {"accept": "application/json", **self.headers, **(await self.auth.aheaders())}
        request = listing_request(self.base_url.join(self.listing_path), headers, self.timeout)
        return self.parse_models(await aget_json(self.async_client(), request, provider=self.name))

    def parse_models(self, data: Any) -> list[AvailableModel]:
        """OpenAI's ``{"data": [...]}``, or the bare list some providers answer (Together)."""
        return super().parse_models({"data": data} if isinstance(data, list) else data)
