"""`HTTPModel`: the one model class for every backend reached over HTTP.

It is built from three parts: a `Provider` (where, auth, clients), a sans-I/O `WireCodec`
(request bodies, response and stream parsing, error bodies) and a `ModelProfile` (what the model
enforces). This module checks a request against the profile, builds it, hands it to the I/O
driver (`_driver`) and turns the reply into a response or a complete, typed error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx
from typing_extensions import TypedDict, Unpack

from ._auth import key_hint
from ._codec import ErrorContext, Reply, RequestContext, WireCodec
from ._driver import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    Answer,
    AsyncBody,
    Post,
    afetch,
    afetch_post,
    aread_capped,
    asend,
    fetch,
    read_capped,
    request_timeout,
    send,
    with_timeout,
)
from ._exceptions import (
    AuthenticationError,
    ConfigurationError,
    ProviderError,
    ResponseTooLargeError,
    public_url,
    translate_httpx_errors,
)
from ._messages import MessagesInput, to_messages
from ._model import Model
from ._preflight import acheck_context, check_context
from ._profile import ModelProfile, ProfileOverride, check_request
from ._response import ChatResponse, copied_with
from ._settings import Settings, merge_settings
from ._streaming import AsyncStream, OpenedStream, Stream
from ._structured import output_achat, output_chat, output_stream
from ._version import __version__
from .providers._provider import ConnectionOptions
from .tokens._catalog import pricing_for

if TYPE_CHECKING:
    from .providers._provider import Provider


class HTTPModelOptions(ConnectionOptions, total=False):
    """The options every HTTP model takes: where and how to connect (`ConnectionOptions`), and
    the model's own settings."""

    settings: Settings | None
    profile: ProfileOverride
    context_window: int | None
    max_response_bytes: int
    catalog_model: str | None
    """The catalog entry that prices this model when its name is yours (an Azure deployment)."""
    api: Literal["chat", "responses", "auto"]
    """The wire protocol: ``"chat"`` (Chat Completions, the default), ``"responses"`` (the
    Responses API) or ``"auto"`` (the one the model's profile prefers)."""


_MODEL_KEYS = frozenset(HTTPModelOptions.__annotations__) - frozenset(ConnectionOptions.__annotations__)


def split_model_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the model's own options, everything else)`` — the rest configures the provider."""
    own = {k: v for k, v in options.items() if k in _MODEL_KEYS}
    return own, {k: v for k, v in options.items() if k not in _MODEL_KEYS}


__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "HTTPModel", "HTTPModelOptions", "RequestContext", "WireCodec"]

_REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "x-ms-request-id", "request-id", "x-amzn-requestid")
_USER_AGENT = f"modelmix/{__version__}"


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""Request bodies' encoder: ``json.dumps`` with these options builds a new encoder on every call."""

_REQUEST_ID_RANK = {name.encode("ascii"): rank for rank, name in enumerate(_REQUEST_ID_HEADERS)}


def request_id_of(headers: httpx.Headers) -> str | None:
    """The request id a server or gateway sent, by the preference order of `_REQUEST_ID_HEADERS`.

    One pass over the raw headers: it runs on every response, and ``Headers.get`` scans and
    decodes every header on each lookup."""
    found, found_rank = b"", len(_REQUEST_ID_HEADERS)
    for key, value in headers.raw:
        rank = _REQUEST_ID_RANK.get(key.lower(), found_rank)
        if rank < found_rank and value:
            found, found_rank = value, rank
    return found.decode("latin-1") if found else None


def _wire_api(api: object, preferred: Literal["chat", "responses"], provider: str) -> Literal["chat", "responses"]:
    if api == "auto":
        return preferred
    if api == "chat" or api == "responses":
        return api
    raise ConfigurationError(f"{provider}: api= takes 'chat', 'responses' or 'auto', not {api!r}")


class HTTPModel(Model):
    """A model reached over HTTP: a `Provider` (where, auth, clients), a `WireCodec` (the wire
    format) and a `ModelProfile` (what the model enforces). Providers configure it; nobody
    subclasses the I/O. The public per-provider classes (`OpenAIModel`, ...) only build these three.
    """

    def __init__(
        self,
        name: str,
        *,
        provider: Provider,
        codec: WireCodec | None = None,
        profile: ProfileOverride = None,
        settings: Settings | None = None,
        context_window: int | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        catalog_model: str | None = None,
        api: Literal["chat", "responses", "auto"] = "chat",
    ) -> None:
        if not name:
            raise ConfigurationError(f"a model name is required, e.g. '{provider.name}:<model>'")
        self.backend = provider
        """The `Provider` this model talks through (``provider`` is its registry prefix)."""
        self.provider = provider.name
        self.name = name
        self.settings = merge_settings(None, settings or {})
        self._profile_override = profile
        self._profile = provider.model_profile(name, override=profile)
        self.api = _wire_api(api, self._profile.preferred_api, provider.name)
        """The wire protocol this model speaks: ``"chat"`` or ``"responses"``."""
        self.codec = codec or (provider.responses_codec(name) if self.api == "responses" else provider.codec(name))
        self.auth = provider.auth
        self.base_url = provider.base_url
        # Attempts and log lines name a model by `host`: with the port an explicit URL gives, two
        # servers on one machine (llama.cpp on :8080, vLLM on :8000) are told apart. Errors keep
        # the bare host name in their `host` and the full address in their `url`.
        self.host = provider.base_url.netloc.decode("ascii") or provider.host
        self._error_host = provider.host
        self._origin = f"{self.provider}:{name}@{self.host}"
        env = type(provider).base_url_env
        self._address_hint = "change the address with base_url=" + (
            f" or the {env} environment variable" if env else ""
        )
        self._static_secrets: tuple[str | None, tuple[str, ...]] | None = None
        self._url = self.base_url.join(self.codec.chat_path)
        query = provider.query()
        if query:
            self._url = self._url.copy_merge_params(dict(query))
        self._public_url = public_url(self._url)
        self._url_path = self._url.path
        self._model_timeout = provider.timeout
        self._base_headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": _USER_AGENT,
            **provider.headers,
        }
        if self.auth.static:
            self._base_headers.update(self.auth.headers())
        self._max_response_bytes = max_response_bytes
        self._context_window = context_window
        self.pricing = pricing_for(self.provider, [name], catalog_model)
        """How responses are priced: overrides for this name, `catalog_model`, the model the server reports."""

    # ----------------------------------------------------------------------------- public API

    @property
    def profile(self) -> ModelProfile:
        """What this model enforces (see `ModelProfile`); `discover_profile()` refines it."""
        return self._profile

    @property
    def endpoint(self) -> str:
        return f"{self.base_url.scheme}://{self.base_url.netloc.decode('ascii')}"

    @property
    def context_window(self) -> int | None:
        if self._context_window is not None:
            return self._context_window
        if self.profile.context_window is not None:
            return self.profile.context_window
        info = self.pricing.info()
        return info.context_window if info is not None else None

    @output_chat
    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        try:
            return self._chat_once(messages, settings)
        except AuthenticationError:
            if not self._auth_refreshed():
                raise
        return self._chat_once(messages, settings)

    def _chat_once(self, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
        request, call = self._build_request(messages, settings, stream=False, auth_headers=self._sync_auth())
        started = time.perf_counter()
        with self._translate("sent_no_response"):
            response, body = fetch(
                self._sync_client(), request, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._complete(response, body, started, call)

    @output_achat
    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        try:
            return await self._achat_once(messages, settings)
        except AuthenticationError:
            if not self._auth_refreshed():
                raise
        return await self._achat_once(messages, settings)

    async def _achat_once(self, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
        # The request as its parts: the aiohttp client sends them without an httpx.Request.
        call, post = self._prepare_request(
            messages, settings, stream=False, auth_headers=await self._async_auth(), preflight=False
        )
        await acheck_context(self, call.messages, call.settings, len(post.content))
        started = time.perf_counter()
        with self._translate("sent_no_response"):
            response, body = await afetch_post(
                self._async_client(), post, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._complete(response, body, started, call)

    @output_stream
    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        # Build now so bad input fails at the call site, not on first iteration.
        request, call = self._build_request(messages, settings, stream=True, auth_headers=self._sync_auth())

        def open_stream() -> OpenedStream:
            try:
                return open_request(request)
            except AuthenticationError:
                if not self._auth_refreshed():
                    raise
            fresh, _ = self._build_request(
                messages, settings, stream=True, auth_headers=self._sync_auth(), preflight=False
            )
            return open_request(fresh)

        def open_request(request: httpx.Request) -> OpenedStream:
            started = time.perf_counter()
            with self._translate("sent_no_response"):
                response = send(self._sync_client(), request)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        body = read_capped(response, self._max_response_bytes, self._too_large)
                    response.close()
                    return self._opened_from_body(response, body, started, call)
            except BaseException:
                response.close()
                raise
            return self._opened(response, response.iter_bytes(), response.close, started)

        return Stream(
            open_stream, self.codec.stream_parser(call), provider=self.provider, model=self.name, pricing=self.pricing
        )

    @output_stream
    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        # Built now so bad input fails at the call site; rebuilt at open time only when the
        # credential must be fetched asynchronously (token providers).
        eager, call = self._build_request(messages, settings, stream=True, auth_headers={}, preflight=False)

        async def open_stream() -> OpenedStream:
            await acheck_context(self, call.messages, call.settings, len(eager.content))
            try:
                return await open_request()
            except AuthenticationError:
                if not self._auth_refreshed():
                    raise
            return await open_request()

        async def open_request() -> OpenedStream:
            request = (
                eager
                if self.auth.static
                else self._build_request(
                    messages, settings, stream=True, auth_headers=await self._async_auth(), preflight=False
                )[0]
            )
            started = time.perf_counter()
            with self._translate("sent_no_response"):
                response = await asend(self._async_client(), request)
            body = AsyncBody(response)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        complete = await aread_capped(response, self._max_response_bytes, self._too_large)
                    return self._opened_from_body(response, complete, started, call)
            except BaseException:
                await body.aclose()
                raise
            return self._opened(response, body, body.aclose, started)

        return AsyncStream(
            open_stream, self.codec.stream_parser(call), provider=self.provider, model=self.name, pricing=self.pricing
        )

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}:{self.name} at {self.host} auth={self.auth!r}>"

    # ----------------------------------------------------------------------------- discovery

    def discover_profile(self) -> ModelProfile:
        """Ask the server what it enforces (llama.cpp ``GET /props``, Ollama ``POST /api/show``,
        Azure ``GET /info``) and refine `profile` with the answer; ``profile=`` still wins.

        Never called implicitly: construction makes no network call. A backend that cannot tell
        keeps its profile as it is.
        """
        request = self.backend.discovery_request(self.name)
        if request is None:
            return self.profile
        with self._translate("sent_no_response"):
            response, body = fetch(
                self._sync_client(), self._discovery(request), limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._refine_profile(response, body)

    async def adiscover_profile(self) -> ModelProfile:
        """Async `discover_profile`."""
        request = self.backend.discovery_request(self.name)
        if request is None:
            return self.profile
        with self._translate("sent_no_response"):
            response, body = await afetch(
                self._async_client(),
                self._discovery(request, await self._async_auth()),
                limit=self._max_response_bytes,
                too_large=self._too_large,
            )
        return self._refine_profile(response, body)

    def _discovery(self, request: httpx.Request, auth_headers: Mapping[str, str] | None = None) -> httpx.Request:
        headers = {k: v for k, v in self._base_headers.items() if k != "content-type" or request.content}
        request.headers.update({**headers, **(auth_headers if auth_headers is not None else self._sync_auth())})
        return with_timeout(request, request_timeout(None, self._model_timeout))

    def _refine_profile(self, response: httpx.Response, body: bytes) -> ModelProfile:
        data = self._json_document(response, body)
        discovered = self.backend.profile_from_discovery(data)
        self._profile = self.backend.model_profile(self.name, discovered=discovered, override=self._profile_override)
        return self._profile

    def _json_document(self, response: httpx.Response, body: bytes) -> Any:
        """A small JSON document (discovery, info): typed errors for error statuses and non-JSON."""
        if response.status_code >= 300:
            raise self._status_error(response, body)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, huge integers, deep nesting
            raise ProviderError(
                f"{response.request.method} {response.request.url.path} answered with a body that is not JSON",
                status=response.status_code,
                code="invalid_json",
                **self._where(),
            ) from None

    # ----------------------------------------------------------------------------- internals

    @property
    def _client(self) -> httpx.Client | None:
        return self.backend._client

    @property
    def _aclient(self) -> httpx.AsyncClient | None:
        return self.backend._aclient

    def _sync_client(self) -> httpx.Client:
        return self.backend.sync_client()

    def _async_client(self) -> httpx.AsyncClient:
        return self.backend.async_client()

    def _auth_refreshed(self) -> bool:
        """After a 401: True when the credential could be refreshed (token providers), so exactly one
        retry with a fresh credential may succeed. Static keys are never retried."""
        return not self.auth.static and self.auth.invalidate()

    def _sync_auth(self) -> Mapping[str, str]:
        return {} if self.auth.static else self.auth.headers()

    async def _async_auth(self) -> Mapping[str, str]:
        return {} if self.auth.static else await self.auth.aheaders()

    def _translate(self, phase: Any) -> Any:
        return translate_httpx_errors(
            phase=phase,
            provider=self.provider,
            model=self.name,
            host=self._error_host,
            secrets=self._secrets()[1],
            address_hint=self._address_hint,
        )

    def _where(self) -> _Where:
        """Who failed, for errors built here: every error names its provider, model and host."""
        return _Where(provider=self.provider, model=self.name, host=self._error_host)

    def _build_request(
        self, messages: MessagesInput, *args: Any, **options: Any
    ) -> tuple[httpx.Request, RequestContext]:
        """`_prepare_request` as an httpx request."""
        call, post = self._prepare_request(messages, *args, **options)
        return post.request(), call

    def _prepare_request(
        self,
        messages: MessagesInput,
        call_settings: Mapping[str, Any],
        *,
        stream: bool,
        auth_headers: Mapping[str, str],
        preflight: bool = True,
    ) -> tuple[RequestContext, Post]:
        """The call and its request. `preflight`: refuse here, before anything is sent, a request
        that cannot fit the context window (async callers check with `acheck_context` instead)."""
        settings = merge_settings(self.settings, call_settings)
        profile = self._profile
        call = RequestContext(self.name, to_messages(messages), settings, profile, stream, self._origin)
        check_request(profile, call.messages, settings, provider=self.provider, model=self.name)
        body = self.codec.build_body(call)
        headers = self._base_headers
        extra = settings.get("extra_headers")
        if auth_headers or extra or stream:
            headers = {**headers, **auth_headers, **(extra or {})}
            if stream:
                headers["accept"] = "text/event-stream, application/x-ndjson, application/json"
        content = _COMPACT_JSON.encode(body).encode("utf-8")
        if preflight:
            check_context(self, call.messages, settings, len(content))
        return call, Post(self._url, headers, content, request_timeout(settings.get("timeout"), self._model_timeout))

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response body exceeds the {self._max_response_bytes}-byte cap; the connection was closed",
            limit=self._max_response_bytes,
            phase="local",
            **self._where(),
        )

    def _complete(self, response: Answer, body: bytes, started: float, call: RequestContext) -> ChatResponse:
        reply = self._reply(response, call)
        if response.status_code >= 300:
            raise self.codec.parse_error(body, reply)
        parsed = self._parse_body(response, body, reply)
        # One copy for everything the driver adds (pydantic copies are a visible share of a call).
        update: dict[str, Any] = {
            "provider": self.provider,
            "request_id": reply.context.request_id,
            "latency": time.perf_counter() - started,
        }
        if parsed.cost is None and parsed.usage is not None:
            update["cost"] = self.pricing.cost(parsed.usage, parsed.model)
        return copied_with(parsed, update)

    def _parse_body(self, response: Answer, body: bytes, reply: Reply) -> ChatResponse:
        request_id = reply.context.request_id
        # Raised outside the except block: the decode error's context would carry the whole body.
        try:
            data, valid = json.loads(body), True
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, huge integers, deep nesting
            data, valid = None, False
        if not valid:
            raise ProviderError(
                f"the server answered HTTP {response.status_code} with a body that is not JSON ({len(body)} bytes)",
                status=response.status_code,
                request_id=request_id,
                retryable=True,
                code="invalid_json",
                **self._where(),
            )
        return self.codec.parse_response(data, reply)

    def _opened(self, response: httpx.Response, chunks: Any, close: Callable[[], Any], started: float) -> OpenedStream:
        """A stream whose events will come from `chunks` (the response body)."""
        reply = self._reply(response)
        return OpenedStream(
            chunks,
            close,
            reply.context.request_id,
            self._error_host,
            started,
            error_context=reply.context,
            max_bytes=self._max_response_bytes,
        )

    def _opened_from_body(
        self, response: httpx.Response, body: bytes, started: float, call: RequestContext
    ) -> OpenedStream:
        """A stream request answered with an error status or one complete JSON body."""
        reply = self._reply(response, call)
        if response.status_code >= 300:
            raise self.codec.parse_error(body, reply)
        full = self._parse_body(response, body, reply).model_copy(
            update={"provider": self.provider, "request_id": reply.context.request_id}
        )
        return OpenedStream(
            chunks=None,
            close=_noop,
            request_id=full.request_id,
            host=self._error_host,
            started=started,
            full_response=full,
        )

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        return self.codec.parse_error(body, self._reply(response))

    def _secrets(self) -> tuple[str | None, tuple[str, ...]]:
        """(the key's hint, the credentials an error must never show)."""
        auth = self.auth
        if auth.static:  # a static key's hint and redaction list never change: worked out once
            if self._static_secrets is None:
                self._static_secrets = (key_hint(auth.secret), tuple(auth.secrets()))
            return self._static_secrets
        return key_hint(auth.secret), tuple(auth.secrets())

    def _reply(self, response: Answer, call: RequestContext | None = None) -> Reply:
        hint, secrets = self._secrets()
        context = ErrorContext(
            provider=self.provider,
            model=self.name,
            host=self._error_host,
            url=self._public_url if _same_path(response.url, self._url, self._url_path) else public_url(response.url),
            request_id=request_id_of(response.headers),
            key_hint=hint,
            secrets=secrets,
        )
        return Reply(response.status_code, response.headers, call, self._profile, context)


class _Where(TypedDict):
    provider: str
    model: str
    host: str | None


def _same_path(url: httpx.URL, ours: httpx.URL, our_path: str) -> bool:
    # The direct aiohttp path answers with our own URL object; httpx's with a copy of it.
    return url is ours or url.path == our_path


def _is_plain_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _noop() -> None:
    return None
