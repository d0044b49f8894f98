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
from ._pool_guard import heal_async_pool
from ._response import ChatResponse
from ._settings import Settings, merge_settings
from ._streaming import AsyncStream, OpenedStream, Stream, StreamParser
from ._version import __version__
from .tokens import cost_of, model_info

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "HTTPModel", "WireCodec"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=600.0, write=30.0, pool=10.0)
"""connect 5 s, write 30 s, pool wait 10 s; read 600 s because a non-streamed answer may take
minutes before its headers arrive. Deadlines (resilience layer) bound the whole call."""

DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=20, keepalive_expiry=30.0)
"""Sized for many concurrent calls to one endpoint; idle connections are kept for reuse.

Few idle connections on purpose: httpcore's pool does work proportional to idle × open
connections on every request and response, so 64 kept-alive connections made a warm burst of 200
concurrent calls 3-5x slower than a cold one (benchmarks/README.md). Sequential calls and streams
still reuse one connection."""

MAX_RESPONSE_BYTES = 32 << 20
"""Cap on a non-streamed body: bounded memory whatever the server sends."""

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
        self._timeout_given = timeout is not None
        self._timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else (DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout, connect=min(5.0, timeout)))
        )
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
            response = _send(self._sync_client(), request)
        try:
            with self._translate("sent_no_response"):
                body = self._read_capped(response)
        finally:
            response.close()
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
            response = await _asend(self._async_client(), request)
        try:
            with self._translate("sent_no_response"):
                body = await self._aread_capped(response)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
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
                response = _send(self._sync_client(), request)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        body = self._read_capped(response)
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
                response = await _asend(self._async_client(), request)
            try:
                if response.status_code >= 300 or _is_plain_json(response):
                    with self._translate("sent_no_response"):
                        body = await self._aread_capped(response)
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
                    return self._opened_from_body(response, body, started)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
                raise
            return OpenedStream(
                chunks=response.aiter_bytes(),
                close=response.aclose,
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
            self._client = httpx.Client(timeout=self._timeout, limits=DEFAULT_LIMITS, follow_redirects=False)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to the event loop that opened them; a model used from
        # several loops (asyncio.run twice, or trio) gets one client per loop.
        token = anyio.lowlevel.current_token()
        if self._aclient is None or (self._owns_aclient and self._aclient_token != token):
            self._aclient = httpx.AsyncClient(timeout=self._timeout, limits=DEFAULT_LIMITS, follow_redirects=False)
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
        call_timeout = settings.get("timeout")
        timeout = httpx.Timeout(call_timeout, connect=min(5.0, call_timeout)) if call_timeout is not None else None
        if timeout is None and self._timeout_given:
            timeout = self._timeout
        # Without a per-call or per-model timeout the client's own applies: ours carry the defaults,
        # and a client the user passed in keeps the timeouts they configured on it.
        return httpx.Request(
            "POST",
            self._url,
            headers=headers,
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            extensions={"timeout": timeout.as_dict()} if timeout is not None else {},
        )

    def _check_declared_size(self, response: httpx.Response) -> None:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_response_bytes:
            raise self._too_large()

    def _too_large(self) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the response body exceeds the {self._max_response_bytes}-byte cap; the connection was closed",
            limit=self._max_response_bytes,
            provider=self.provider,
            model=self.name,
            host=self.host,
            phase="local",
        )

    def _read_capped(self, response: httpx.Response) -> bytes:
        self._check_declared_size(response)
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_response_bytes:
                raise self._too_large()
            parts.append(chunk)
        return b"".join(parts)

    async def _aread_capped(self, response: httpx.Response) -> bytes:
        self._check_declared_size(response)
        parts: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_response_bytes:
                raise self._too_large()
            parts.append(chunk)
        return b"".join(parts)

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


def _send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    if "timeout" not in request.extensions:
        request.extensions["timeout"] = client.timeout.as_dict()
    return client.send(request, stream=True)


async def _asend(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    if "timeout" not in request.extensions:
        request.extensions["timeout"] = client.timeout.as_dict()
    try:
        return await client.send(request, stream=True)
    except BaseException:
        # A failed or cancelled send is the only way httpcore orphans a pool slot (_pool_guard).
        await heal_async_pool(client)
        raise


def _is_plain_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _noop() -> None:
    return None
