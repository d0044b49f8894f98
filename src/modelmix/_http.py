"""The thin sync and async HTTP drivers shared by every wire protocol.

Everything protocol-specific (request bodies, response and stream parsing, error bodies) is in a
sans-I/O `WireCodec`; this module only sends, reads with size caps, times, and maps failures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

import anyio.lowlevel
import httpx
from typing_extensions import Unpack

from ._auth import Auth, key_hint
from ._driver import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    AsyncBody,
    afetch,
    aread_capped,
    asend,
    fetch,
    read_capped,
    request_timeout,
    send,
    with_timeout,
)
from ._exceptions import (
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    ProviderError,
    ResponseTooLargeError,
    translate_httpx_errors,
)
from ._messages import Message, MessagesInput, to_messages
from ._model import Model
from ._response import ChatResponse
from ._settings import Settings, merge_settings
from ._streaming import AsyncStream, OpenedStream, Stream, StreamParser
from ._version import __version__
from .tokens import cost_of, model_info

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "HTTPModel", "WireCodec"]

_REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "x-ms-request-id", "request-id", "x-amzn-requestid")
_USER_AGENT = f"modelmix/{__version__}"


class WireCodec(Protocol):
    """Sans-I/O knowledge of one wire protocol."""

    chat_path: str
    """Path of the chat endpoint, relative to the base URL."""

    def build_body(
        self, model: str, messages: list[Message], settings: Settings, *, stream: bool
    ) -> dict[str, Any]: ...

    def parse_response(self, data: Any, *, status: int, headers: httpx.Headers) -> ChatResponse:
        """Decode a complete (non-streamed) body. Raises a typed error for error bodies."""

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIStatusError:
        """The typed error for an error response."""

    def stream_parser(self) -> StreamParser: ...


def request_id_of(headers: httpx.Headers) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value: str | None = headers.get(name)
        if value:
            return value
    return None


class HTTPModel(Model):
    """A model reached over HTTP with one `WireCodec`. Providers configure it; they don't subclass
    the I/O."""

    def __init__(
        self,
        name: str,
        *,
        provider: str,
        base_url: str,
        codec: WireCodec,
        auth: Auth,
        settings: Settings | None = None,
        default_headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        context_window: int | None = None,
    ) -> None:
        if not name:
            raise ConfigurationError(f"a model name is required, e.g. '{provider}:<model>'")
        self.provider = provider
        self.name = name
        self.settings = merge_settings(None, settings or {})
        self.codec = codec
        self.auth = auth
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        if self.base_url.scheme not in ("http", "https"):
            raise ConfigurationError(f"{provider}: base URL must start with http:// or https://, got {base_url!r}")
        self.host = self.base_url.host
        self._url = self.base_url.join(codec.chat_path)
        if query:
            self._url = self._url.copy_merge_params(dict(query))
        self._model_timeout = timeout
        self._base_headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": _USER_AGENT,
            **(default_headers or {}),
        }
        if auth.static:
            self._base_headers.update(auth.headers())
        self._client = http_client
        self._owns_client = http_client is None
        self._aclient = async_http_client
        self._owns_aclient = async_http_client is None
        self._aclient_token: object | None = None
        self._max_response_bytes = max_response_bytes
        self._context_window = context_window

    # ----------------------------------------------------------------------------- public API

    @property
    def endpoint(self) -> str:
        return f"{self.base_url.scheme}://{self.base_url.netloc.decode('ascii')}"

    @property
    def context_window(self) -> int | None:
        if self._context_window is not None:
            return self._context_window
        info = model_info(self.name)
        return info.context_window if info is not None else None

    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        try:
            return self._chat_once(messages, settings)
        except AuthenticationError:
            if not self._auth_refreshed():
                raise
        return self._chat_once(messages, settings)

    def _chat_once(self, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
        request = self._build_request(messages, settings, stream=False, auth_headers=self._sync_auth())
        started = time.perf_counter()
        with self._translate("sent_no_response"):
            response, body = fetch(
                self._sync_client(), request, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._complete(response, body, started)

    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        try:
            return await self._achat_once(messages, settings)
        except AuthenticationError:
            if not self._auth_refreshed():
                raise
        return await self._achat_once(messages, settings)

    async def _achat_once(self, messages: MessagesInput, settings: Mapping[str, Any]) -> ChatResponse:
        request = self._build_request(messages, settings, stream=False, auth_headers=await self._async_auth())
        started = time.perf_counter()
        with self._translate("sent_no_response"):
            response, body = await afetch(
                self._async_client(), request, limit=self._max_response_bytes, too_large=self._too_large
            )
        return self._complete(response, body, started)

    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        # Build now so bad input fails at the call site, not on first iteration.
        request = self._build_request(messages, settings, stream=True, auth_headers=self._sync_auth())

        def open_stream() -> OpenedStream:
            try:
                return open_request(request)
            except AuthenticationError:
                if not self._auth_refreshed():
                    raise
            return open_request(self._build_request(messages, settings, stream=True, auth_headers=self._sync_auth()))

        def open_request(request: httpx.Request) -> OpenedStream:
            started = time.perf_counter()
            with self._translate("sent_no_response"):
                response = send(self._sync_client(), request)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        body = read_capped(response, self._max_response_bytes, self._too_large)
                    response.close()
                    return self._opened_from_body(response, body, started)
            except BaseException:
                response.close()
                raise
            return OpenedStream(
                chunks=response.iter_bytes(),
                close=response.close,
                request_id=request_id_of(response.headers),
                host=self.host,
                started=started,
                redact=self._redact,
            )

        return Stream(open_stream, self._stream_parser(messages, settings), provider=self.provider, model=self.name)

    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        # Built now so bad input fails at the call site; rebuilt at open time only when the
        # credential must be fetched asynchronously (token providers).
        eager = self._build_request(messages, settings, stream=True, auth_headers={})

        async def open_stream() -> OpenedStream:
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
                else self._build_request(messages, settings, stream=True, auth_headers=await self._async_auth())
            )
            started = time.perf_counter()
            with self._translate("sent_no_response"):
                response = await asend(self._async_client(), request)
            body = AsyncBody(response)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        complete = await aread_capped(response, self._max_response_bytes, self._too_large)
                    return self._opened_from_body(response, complete, started)
            except BaseException:
                await body.aclose()
                raise
            return OpenedStream(
                chunks=body,
                close=body.aclose,
                request_id=request_id_of(response.headers),
                host=self.host,
                started=started,
                redact=self._redact,
            )

        return AsyncStream(
            open_stream, self._stream_parser(messages, settings), provider=self.provider, model=self.name
        )

    def _stream_parser(self, messages: MessagesInput, settings: Mapping[str, Any]) -> StreamParser:
        """The parser for one streamed call. A provider overrides this to wrap the codec's parser
        with call-aware post-processing (e.g. counting usage a server does not send)."""
        return self.codec.stream_parser()

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def __del__(self) -> None:
        # A model dropped without close(): give its idle sync connections back now rather than
        # leaving open sockets to the garbage collector. (An async pool can only be closed from its
        # event loop, so `aclose()` remains the way to release that one.)
        client = getattr(self, "_client", None)
        if client is not None and getattr(self, "_owns_client", False):
            client.close()

    async def aclose(self) -> None:
        self.close()
        if self._aclient is not None and self._owns_aclient:
            await self._aclient.aclose()
            self._aclient = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}:{self.name} at {self.host} auth={self.auth!r}>"

    # ----------------------------------------------------------------------------- internals

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to the event loop that opened them; a model used from
        # several loops (asyncio.run twice, or trio) gets one client per loop.
        token = anyio.lowlevel.current_token()
        if self._aclient is None or (self._owns_aclient and self._aclient_token != token):
            self._aclient = httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False)
            self._aclient_token = token
        return self._aclient

    def _auth_refreshed(self) -> bool:
        """After a 401: True when the credential could be refreshed (token providers), so exactly one
        retry with a fresh credential may succeed. Static keys are never retried."""
        return not self.auth.static and self.auth.invalidate()

    def _sync_auth(self) -> Mapping[str, str]:
        return {} if self.auth.static else self.auth.headers()

    async def _async_auth(self) -> Mapping[str, str]:
        return {} if self.auth.static else await self.auth.aheaders()

    def _translate(self, phase: Any) -> Any:
        return translate_httpx_errors(provider=self.provider, model=self.name, host=self.host, phase=phase)

    def _build_request(
        self,
        messages: MessagesInput,
        call_settings: Mapping[str, Any],
        *,
        stream: bool,
        auth_headers: Mapping[str, str],
    ) -> httpx.Request:
        settings = merge_settings(self.settings, call_settings)
        body = self.codec.build_body(self.name, to_messages(messages), settings, stream=stream)
        headers = self._base_headers
        extra = settings.get("extra_headers")
        if auth_headers or extra or stream:
            headers = {**headers, **auth_headers, **(extra or {})}
            if stream:
                headers["accept"] = "text/event-stream, application/x-ndjson, application/json"
        request = httpx.Request(
            "POST",
            self._url,
            headers=headers,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        )
        return with_timeout(request, request_timeout(settings.get("timeout"), self._model_timeout))

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response body exceeds the {self._max_response_bytes}-byte cap; the connection was closed",
            limit=self._max_response_bytes,
            provider=self.provider,
            model=self.name,
            host=self.host,
            phase="local",
        )

    def _complete(self, response: httpx.Response, body: bytes, started: float) -> ChatResponse:
        if response.status_code >= 300:
            raise self._status_error(response, body)
        parsed = self._parse_body(response, body)
        # One copy for everything the driver adds (pydantic copies are a visible share of a call).
        update: dict[str, Any] = {
            "provider": self.provider,
            "request_id": request_id_of(response.headers),
            "latency": time.perf_counter() - started,
        }
        if parsed.cost is None and parsed.usage is not None:
            update["cost"] = cost_of(parsed.model, parsed.usage)
            if update["cost"] is None:
                update["cost"] = cost_of(self.name, parsed.usage)
        return parsed.model_copy(update=update)

    def _parse_body(self, response: httpx.Response, body: bytes) -> ChatResponse:
        request_id = request_id_of(response.headers)
        # Raised outside the except block: the decode error's context would carry the whole body.
        try:
            data, valid = json.loads(body), True
        except (json.JSONDecodeError, UnicodeDecodeError):
            data, valid = None, False
        if not valid:
            raise ProviderError(
                f"the server answered HTTP {response.status_code} with a body that is not JSON ({len(body)} bytes)",
                provider=self.provider,
                model=self.name,
                status=response.status_code,
                request_id=request_id,
                host=self.host,
                retryable=True,
                code="invalid_json",
            )
        try:
            parsed = self.codec.parse_response(data, status=response.status_code, headers=response.headers)
        except ProviderError as exc:
            raise self._enrich(exc, response) from None
        return parsed

    def _opened_from_body(self, response: httpx.Response, body: bytes, started: float) -> OpenedStream:
        """A stream request answered with an error status or one complete JSON body."""
        if response.status_code >= 300:
            raise self._status_error(response, body)
        full = self._parse_body(response, body).model_copy(
            update={"provider": self.provider, "request_id": request_id_of(response.headers)}
        )
        return OpenedStream(
            chunks=None, close=_noop, request_id=full.request_id, host=self.host, started=started, full_response=full
        )

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        error = self.codec.parse_error(response.status_code, response.headers, body)
        return self._enrich(error, response)

    def _enrich(self, error: ProviderError, response: httpx.Response) -> ProviderError:
        error.provider = self.provider
        error.model = self.name
        error.host = self.host
        error.request_id = error.request_id or request_id_of(response.headers)
        if isinstance(error, AuthenticationError):
            error.key_hint = key_hint(self.auth.secret)
        self._redact(error)
        return error

    def _redact(self, error: ProviderError) -> None:
        """The server may echo the key back in its message (also inside a stream); never let it
        travel further. `args` too, since reprs and error reporters read them."""
        hint = key_hint(self.auth.secret) or "…"
        mapped = getattr(error, "mapped", None)
        for item in (error, mapped) if isinstance(mapped, ProviderError) else (error,):
            for secret in self.auth.secrets():
                if secret and secret in item.message:
                    item.message = item.message.replace(secret, hint)
                    item.args = (item.message,)


def _is_plain_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _noop() -> None:
    return None
