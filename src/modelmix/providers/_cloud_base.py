"""What the cloud presets share: provider-specific options on top of the connection options, an
API key they cannot work without, listings that come as a bare list, and error bodies whose useful
part sits beside ``message`` (OpenRouter's ``metadata``, Groq's ``failed_generation``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._exceptions import ConfigurationError
from ._listing import AvailableModel
from ._openai_wire import OpenAIChatCodec
from ._provider import Provider, model_option_names, reject_unknown_options, split_connection_options

if TYPE_CHECKING:
    from .._codec import Reply, WireCodec
    from .._exceptions import APIStatusError
    from .._http import HTTPModel

__all__ = ["CloudProvider", "DetailedErrorsCodec", "ErrorDetails"]

ErrorDetails = Callable[[Mapping[str, Any]], "str | None"]
"""Reads the part of an ``{"error": {...}}`` object that says more than its ``message``."""

_MAX_DETAILS = 500
"""How much of a detail (a failed generation, an upstream message) joins the error message."""


class DetailedErrorsCodec(OpenAIChatCodec):
    """OpenAI chat completions whose error messages also carry what a provider puts beside
    ``message`` — so the one line a user reads says why, not only "Provider returned error"."""

    def __init__(self, details: ErrorDetails) -> None:
        self._details = details

    def parse_error(self, body: bytes, reply: Reply) -> APIStatusError:
        return super().parse_error(_with_details(body, self._details), reply)


def _with_details(body: bytes, details: ErrorDetails) -> bytes:
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

    def codec(self, model_name: str) -> WireCodec:
        base = super().codec(model_name)
        if type(self).error_details is CloudProvider.error_details or type(base) is not OpenAIChatCodec:
            return base
        return DetailedErrorsCodec(self.error_details)

    def parse_models(self, data: Any) -> list[AvailableModel]:
        """OpenAI's ``{"data": [...]}``, or the bare list some providers answer (Together)."""
        return super().parse_models({"data": data} if isinstance(data, list) else data)
