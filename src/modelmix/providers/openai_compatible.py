"""OpenAI-compatible servers: ``llamacpp:``, ``vllm:``, ``lmstudio:`` and ``openai-compatible:``.

They all speak OpenAI's chat completions, so they share `OpenAIChatCodec`; what differs is
configuration (default port, environment variables) and a few quirks, handled here:

=====================  ===========================  =========================  ===========================
prefix                 default base URL             base URL variable          API key variable
=====================  ===========================  =========================  ===========================
``llamacpp:``          ``http://127.0.0.1:8080/v1``  ``LLAMACPP_BASE_URL``      ``LLAMACPP_API_KEY``
``vllm:``              ``http://127.0.0.1:8000/v1``  ``VLLM_BASE_URL``          ``VLLM_API_KEY``
``lmstudio:``          ``http://127.0.0.1:1234/v1``  ``LMSTUDIO_BASE_URL``      ``LMSTUDIO_API_KEY``
``openai-compatible:`` (required)                   ``OPENAI_COMPATIBLE_BASE_URL``  ``OPENAI_COMPATIBLE_API_KEY``
=====================  ===========================  =========================  ===========================

Quirks: usage missing from streams is estimated offline (``Usage.estimated``); ``<tool_call>``
text becomes tool calls when tools were offered; an HTTP 200 whose body is an error (LM Studio)
raises the error it describes; llama.cpp's ``exceed_context_size_error`` becomes
`ContextLengthExceededError`; a 503 "Loading model" is a retryable `ServerError` with a hint.
Whole tool calls in one delta without ``index`` and ``finish_reason: "stop"`` on a tool call
are handled by the shared codec for every OpenAI-style backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from pydantic import SecretStr
from typing_extensions import Unpack

from .._auth import APIKeyAuth, Auth, NoAuth, resolve_secret
from .._exceptions import APIStatusError, ConfigurationError
from .._http import HTTPModel
from .._messages import MessagesInput, to_messages
from .._response import ChatResponse
from .._settings import Settings, merge_settings
from .._streaming import StreamParser
from ._compat_quirks import CompatStreamParser, estimate_prompt_tokens, repair_response
from ._error_bodies import error_info, typed_error
from ._listing import AvailableModel, aget_json, get_json
from ._openai_wire import OpenAIChatCodec, WireQuirks

__all__ = ["PRESETS", "CompatCodec", "OpenAICompatibleModel", "Preset", "alist_models", "create", "list_models"]


@dataclass(frozen=True)
class Preset:
    """Defaults for one family of OpenAI-compatible servers."""

    prefix: str
    label: str
    default_base_url: str | None
    base_url_env: str
    api_key_env: str
    quirks: WireQuirks = field(default_factory=WireQuirks)


PRESETS: dict[str, Preset] = {
    "llamacpp": Preset(
        "llamacpp", "llama.cpp server", "http://127.0.0.1:8080/v1", "LLAMACPP_BASE_URL", "LLAMACPP_API_KEY"
    ),
    "vllm": Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", "VLLM_BASE_URL", "VLLM_API_KEY"),
    "lmstudio": Preset("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", "LMSTUDIO_BASE_URL", "LMSTUDIO_API_KEY"),
    "openai-compatible": Preset(
        "openai-compatible", "OpenAI-compatible server", None, "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY"
    ),
}


def _status_from_text(message: str) -> int:
    """The HTTP status an error body sent with 200 would have deserved (LM Studio)."""
    lowered = message.lower()
    if "context" in lowered and ("length" in lowered or "window" in lowered or "size" in lowered):
        return 400
    if "not found" in lowered or "no models loaded" in lowered or "not loaded" in lowered:
        return 404
    if "rate limit" in lowered or "too many requests" in lowered:
        return 429
    return 500


class CompatCodec(OpenAIChatCodec):
    """`OpenAIChatCodec` plus the error quirks of local OpenAI-compatible servers."""

    def parse_response(self, data: Any, *, status: int, headers: httpx.Headers) -> ChatResponse:
        if status < 300 and isinstance(data, Mapping) and data.get("error"):
            info = error_info(data, fallback="the server answered HTTP 200 with an error body")
            raise typed_error(_status_from_text(info.message), info, headers)
        return super().parse_response(data, status=status, headers=headers)

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIStatusError:
        error = super().parse_error(status, headers, body)
        if status == 503 and "loading" in error.message.lower():
            # llama.cpp answers 503 {"error": {"message": "Loading model"}} until the weights are in memory.
            error.message = f"{error.message}: the server is still loading the model; retry in a few seconds"
            error.retryable = True
            if error.retry_after is None:
                error.retry_after = 1.0
        return error


def resolve_base_url(preset: Preset, base_url: str | None) -> str:
    """Argument, then the preset's environment variable, then its default port on 127.0.0.1."""
    url = base_url or os.environ.get(preset.base_url_env) or preset.default_base_url
    if not url:
        raise ConfigurationError(
            f"{preset.prefix}: no base URL; pass base_url='http://host:port/v1' or set {preset.base_url_env}"
        )
    parsed = httpx.URL(url if "://" in url else f"http://{url}")
    if preset.default_base_url is not None and parsed.path in ("", "/"):
        # These servers mount the API under /v1; accept "http://host:port" as users often write it.
        parsed = parsed.copy_with(path="/v1")
    return str(parsed)


def resolve_auth(preset: Preset, api_key: str | SecretStr | None) -> Auth:
    secret = resolve_secret(api_key, preset.api_key_env)
    return APIKeyAuth(secret) if secret is not None else NoAuth()


class OpenAICompatibleModel(HTTPModel):
    """A model on an OpenAI-compatible server, configured by a `Preset`.

    ``OpenAICompatibleModel("qwen2.5", preset="openai-compatible", base_url="http://localhost:11434/v1")``
    talks to Ollama's ``/v1`` route; ``mm.model("llamacpp:any")`` to a llama.cpp server on port 8080.
    """

    def __init__(
        self,
        name: str,
        *,
        preset: str | Preset = "openai-compatible",
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        settings: Settings | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        context_window: int | None = None,
        text_tool_calls: bool = True,
        estimate_usage: bool = True,
        stream_usage: bool | None = None,
    ) -> None:
        config = preset if isinstance(preset, Preset) else PRESETS.get(preset)
        if config is None:
            raise ConfigurationError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset = config
        self.text_tool_calls = text_tool_calls
        self.estimate_usage = estimate_usage
        quirks = config.quirks
        if stream_usage is not None:
            quirks = replace(quirks, stream_usage=stream_usage)
        super().__init__(
            name,
            provider=config.prefix,
            base_url=resolve_base_url(config, base_url),
            codec=CompatCodec(quirks),
            auth=resolve_auth(config, api_key),
            settings=settings,
            default_headers=default_headers,
            timeout=timeout,
            http_client=http_client,
            async_http_client=async_http_client,
            context_window=context_window,
        )

    # The two repairs need the call's messages and tools, which the codec never sees.

    def _call_context(self, messages: MessagesInput, call_settings: Mapping[str, Any]) -> tuple[int | None, bool]:
        settings = merge_settings(self.settings, call_settings)
        tools = settings.get("tools")
        prompt = estimate_prompt_tokens(to_messages(messages), tools) if self.estimate_usage else None
        return prompt, bool(tools)

    def _repair(self, response: ChatResponse, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
        if response.usage is not None and not (self.text_tool_calls and "<tool_call>" in response.text):
            return response
        prompt, tools_offered = self._call_context(messages, settings)
        return repair_response(
            response, prompt_tokens=prompt, tools_offered=tools_offered, text_tool_calls=self.text_tool_calls
        )

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return self._repair(super().chat(messages, **settings), messages, settings)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        return self._repair(await super().achat(messages, **settings), messages, settings)

    def _stream_parser(self, messages: MessagesInput, settings: Mapping[str, Any]) -> StreamParser:
        prompt, tools_offered = self._call_context(messages, settings)
        return CompatStreamParser(
            self.codec.stream_parser(),
            prompt_tokens=prompt,
            parse_text_tool_calls=self.text_tool_calls and tools_offered,
        )

    # ----------------------------------------------------------------------------- listing

    def list_models(self) -> list[AvailableModel]:
        """``GET /v1/models`` on this model's server."""
        data = get_json(self.base_url.join("models"), provider=self.provider, headers=self._list_headers())
        return _models_from(self.provider, data)

    async def alist_models(self) -> list[AvailableModel]:
        data = await aget_json(self.base_url.join("models"), provider=self.provider, headers=self._list_headers())
        return _models_from(self.provider, data)

    def _list_headers(self) -> dict[str, str]:
        return {"accept": "application/json", **self.auth.headers()}


def _models_from(provider: str, data: Any) -> list[AvailableModel]:
    entries = data.get("data") if isinstance(data, Mapping) else None
    models: list[AvailableModel] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or not entry.get("id"):
            continue
        created = entry.get("created")
        models.append(
            AvailableModel(
                provider=provider,
                id=str(entry["id"]),
                owned_by=entry.get("owned_by") if isinstance(entry.get("owned_by"), str) else None,
                created=created if isinstance(created, int) else None,
                details={k: v for k, v in entry.items() if k not in ("id", "object", "owned_by", "created")},
            )
        )
    return models


def _listing_request(prefix: str, options: Mapping[str, Any]) -> tuple[httpx.URL, dict[str, str]]:
    preset = PRESETS[prefix]
    base = httpx.URL(resolve_base_url(preset, options.get("base_url")).rstrip("/") + "/")
    auth = resolve_auth(preset, options.get("api_key"))
    return base.join("models"), {"accept": "application/json", **auth.headers()}


def list_models(prefix: str, **options: Any) -> list[AvailableModel]:
    """``GET {base}/models`` for one preset (used by `modelmix.list_models`)."""
    url, headers = _listing_request(prefix, options)
    data = get_json(
        url, provider=prefix, headers=headers, timeout=options.get("timeout"), client=options.get("http_client")
    )
    return _models_from(prefix, data)


async def alist_models(prefix: str, **options: Any) -> list[AvailableModel]:
    url, headers = _listing_request(prefix, options)
    data = await aget_json(
        url, provider=prefix, headers=headers, timeout=options.get("timeout"), client=options.get("async_http_client")
    )
    return _models_from(prefix, data)


def _factory(prefix: str) -> Any:
    def create(name: str, **options: Any) -> OpenAICompatibleModel:
        if not name and prefix == "llamacpp":
            name = "default"  # a llama.cpp server serves the one model it loaded, whatever the name
        return OpenAICompatibleModel(name, preset=prefix, **options)

    create.__name__ = f"create_{prefix.replace('-', '_')}"
    create.__doc__ = f"Registry factory for ``{prefix}:<model>``."
    return create


create = _factory("openai-compatible")
create_llamacpp = _factory("llamacpp")
create_vllm = _factory("vllm")
create_lmstudio = _factory("lmstudio")
