"""The aiohttp transport (``transport="aiohttp"``, the ``modelmix[aiohttp]`` extra).

httpx's API stays in front — requests, responses, timeouts, the I/O driver, admission and the one
httpx → modelmix error mapping are the same code as on the default transport — and aiohttp's
connection pool and HTTP parser sit behind it, as an ``httpx.AsyncBaseTransport``. What makes it
behave like httpcore rather than merely work:

- **Errors.** Every aiohttp failure becomes the httpx exception httpcore raises for the same event
  (a refused connection is a ``ConnectError``, a silent server a ``ReadTimeout``, a body cut short
  a ``RemoteProtocolError``, a reset a ``ReadError``), so retries, breakers and messages do not
  depend on the transport. (The ``httpx-aiohttp`` package maps a refusal and a disconnect to
  ``ConnectTimeout`` and lets some aiohttp errors through untranslated.)
- **Body chunks as the server sent them.** The body is read one HTTP chunk at a time, as httpcore
  hands it out: a stream's commit point (the first content the caller sees) falls in the same
  place whichever transport read it, instead of wherever aiohttp's buffer happened to end.
- **Per-phase timeouts.** connect → aiohttp's ``sock_connect``, read → ``sock_read`` (per read, as
  in httpcore), pool → ``connect`` (aiohttp's wait for a pooled connection plus connecting), all
  to the exact instant (aiohttp otherwise rounds limits of 5 s and more up to a whole second).
  aiohttp has no write timeout; its read timeout runs from the moment the request starts going
  out, so a request the server will not take is bounded all the same.
- **Headers as given.** Only the request's own headers go out (aiohttp adds neither
  ``Accept-Encoding`` nor its ``User-Agent``), bodies are not decompressed here (httpx does that),
  and cookies are not collected.
- **The send path.** `AiohttpClient.send` goes straight to the transport for the requests modelmix
  builds (no auth flow, no event hooks, redirects never followed): httpx's general machinery
  around a send — cookie extraction above all — cost about as much as aiohttp's whole request.
- **A direct path for whole bodies.** A chat call that is not streamed is sent from its parts
  (URL, headers, bytes, timeout) by `AiohttpClient.fetch_direct`, with no ``httpx.Request`` or
  ``httpx.Response`` in between — building those cost more than a third of the call. It keeps
  everything above: admission, the per-phase timeouts cut by the deadline, the body cap, the same
  httpx errors (so the same modelmix errors), a connection dropped when the body was not read to
  its end (a cancelled call included). The rare answers that need httpx's own handling — a
  redirect, a compressed body — are handed to it.

This module imports aiohttp, so only an aiohttp model's first async call imports it.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import httpx
import yarl
from multidict import CIMultiDict

from ._admission import AdmittingTransport, ConnectionSlots, take_slot
from ._call_deadline import clamp_phases
from ._driver import Post, TooLarge, aread_capped

__all__ = ["AiohttpClient", "AiohttpTransport", "DirectAnswer", "httpx_error_class"]

_Phases = tuple[float | None, float | None, float | None]
_PAYLOAD_CUT_BY_AN_ERROR = ">. "
"""What aiohttp puts between "Response payload is not completed: <why>" and the connection error
that cut the body short (nothing follows when the server closed the connection cleanly)."""


def httpx_error_class(exc: BaseException) -> type[httpx.TransportError] | None:
    """The httpx exception httpcore raises for the event behind an aiohttp (or asyncio) error."""
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        return httpx.ConnectError  # refused, unreachable, DNS, TLS
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, asyncio.TimeoutError):  # SocketTimeoutError, and any other timeout
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ClientPayloadError) and _PAYLOAD_CUT_BY_AN_ERROR in str(exc):
        # A body cut short by a reset rather than a clean close: httpcore reads the reset (ReadError).
        # aiohttp keeps no cause for it, only the connection error's repr after its own message.
        return httpx.ReadError
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        # Closed before the answer was complete, a body cut short, or a malformed answer.
        return httpx.RemoteProtocolError
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol
    if isinstance(exc, aiohttp.ClientError | OSError):  # a reset, or a read on a closed connection
        return httpx.ReadError
    return None


_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
"""What aiohttp raises for a failed request or read (caught without a context manager: this is paid
on every call and every streamed chunk)."""


def _translated(exc: BaseException, request: httpx.Request) -> BaseException:
    """The httpx exception for `exc`, to raise ``from exc``: the aiohttp error stays the cause, as
    its chain tells a DNS or TLS failure apart."""
    target = httpx_error_class(exc)
    if target is None:  # pragma: no cover - every ClientError, OSError and timeout has a target
        return exc
    return target(str(exc) or type(exc).__name__, request=request)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body, one HTTP chunk at a time; closing it frees the connection (or
    drops it, when the body was not read to its end)."""

    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk, _end_of_http_chunk in self._response.content.iter_chunks():
                if chunk:
                    yield chunk
        except _FAILURES as exc:
            raise _translated(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp ``ClientSession`` (opened at the first request, in the
    running event loop; see the module docstring)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        self._limits = limits
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[_Phases, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}
        self._last_url: tuple[httpx.URL, yarl.URL] | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
            timeout=aiohttp.ClientTimeout(),
        )

    def _url(self, url: httpx.URL) -> yarl.URL:
        # A model sends to one URL: parse it once (httpx already percent-encoded it). The direct
        # path passes the model's own URL object each time, known without even writing it out.
        last = self._last_url
        if last is not None and last[0] is url:
            return last[1]
        text = str(url)
        found = self._urls.get(text)
        if found is None:
            if len(self._urls) > 64:
                self._urls.clear()
            found = self._urls[text] = yarl.URL(text, encoded=True)
        self._last_url = (url, found)
        return found

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        return self._phase_timeout(request.extensions.get("timeout", {}))

    def _phase_timeout(self, phases: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        key = (phases.get("connect"), phases.get("read"), phases.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) > 256:  # deadlines make many distinct values: keep the cache small
                self._timeouts.clear()
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2], ceil_threshold=math.inf
            )
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._session = self._open()
        headers = CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw)
        try:
            content: bytes | None = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        proxy = self._proxy
        try:
            response = await session.request(
                request.method,
                self._url(request.url),
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=None if proxy is None else str(proxy.url),
                proxy_auth=None if proxy is None or proxy.auth is None else aiohttp.BasicAuth(*proxy.auth),
                proxy_headers=None if proxy is None else proxy.headers,
            )
        except _FAILURES as exc:
            raise _translated(exc, request) from exc
        return self._as_httpx(response, request)

    def _as_httpx(self, response: aiohttp.ClientResponse, request: httpx.Request) -> httpx.Response:
        version = response.version or aiohttp.HttpVersion11
        extensions: dict[str, Any] = {
            "http_version": b"HTTP/1.1" if version == (1, 1) else f"HTTP/{version.major}.{version.minor}".encode(),
            "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
        }
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def fetch_direct(
        self, post: Post, phases: Mapping[str, float | None], slots: ConnectionSlots | None, reading: _Reading
    ) -> tuple[DirectAnswer | httpx.Response, bytes]:
        """Send `post` inside one of `slots` and read the whole body (see `AiohttpClient.fetch_direct`)."""
        if slots is not None and not slots.take_free():
            await take_slot(slots, post.request)
        try:
            return await self._fetch_direct(post, phases, reading)
        finally:
            if slots is not None:
                slots.release()

    async def _fetch_direct(
        self, post: Post, phases: Mapping[str, float | None], reading: _Reading
    ) -> tuple[DirectAnswer | httpx.Response, bytes]:
        limit, too_large, finish = reading
        session = self._session
        if session is None:
            session = self._session = self._open()
        try:
            response = await session.request(
                "POST",
                self._url(post.url),
                headers=post.headers,
                data=post.content or None,
                allow_redirects=False,
                timeout=self._phase_timeout(phases),
            )
        except _FAILURES as exc:
            raise _translated(exc, post.request()) from exc
        try:
            if "Content-Encoding" in response.headers or (
                response.status in _REDIRECTS and "Location" in response.headers
            ):
                # httpx decodes a compressed body (the cap counts decoded bytes) and reads a redirect.
                request = post.request()
                answer = await finish(request, self._as_httpx(response, request))
                return answer, await aread_capped(answer, limit, too_large)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise too_large()
            parts: list[bytes] = []
            size = 0
            body = response.content
            while chunk := await body.readany():
                size += len(chunk)
                if size > limit:
                    raise too_large()
                parts.append(chunk)
                if body.at_eof():  # the whole body came in one read: no need to ask again
                    break
        except _FAILURES as exc:
            raise _translated(exc, post.request()) from exc
        finally:
            # Read to its end, the connection went back to the pool already; otherwise (a cap, an
            # error, a cancellation) it is dropped. Synchronous, so a cancelled call does it too.
            response.release()
        return DirectAnswer(response.status, httpx.Headers(response.raw_headers), post.url), b"".join(parts)

    def connections_in_use(self) -> int:
        """Connections lent to a response that has not been closed (0: the pool is idle)."""
        connector = None if self._session is None else self._session.connector
        return len(getattr(connector, "_acquired", ()))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


_LEAN_SEND = all(hasattr(httpx.AsyncClient, name) for name in ("_transport_for_url", "_build_redirect_request"))
"""The httpx internals the lean send path uses are there (httpx 0.28); otherwise every send takes
httpx's own path."""


class AiohttpClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose connections (proxied ones too) are aiohttp's."""

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        given: httpx.AsyncBaseTransport | None = kwargs.get("transport")
        return given or AiohttpTransport(**_transport_options(kwargs))

    def _init_proxy_transport(self, proxy: httpx.Proxy, *args: Any, **kwargs: Any) -> httpx.AsyncBaseTransport:
        return AiohttpTransport(proxy=proxy, **_transport_options(kwargs))

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        """A streamed send of a request modelmix built goes straight to the transport; anything
        else (a read body, auth, hooks, followed redirects) takes httpx's general path."""
        lean = (
            stream
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects is httpx.USE_CLIENT_DEFAULT
            and self._plain()
        )
        if not lean:
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        request.extensions.setdefault("timeout", self.timeout.as_dict())
        return await self._finish(request, await self._transport_for_url(request.url).handle_async_request(request))

    def _plain(self) -> bool:
        """Nothing of httpx's general send path applies: no auth, hooks or followed redirects."""
        return (
            _LEAN_SEND
            and not self.follow_redirects
            and self.auth is None
            and not any(self.event_hooks.values())
            and not self.is_closed
        )

    async def _finish(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """What httpx's send does to a response besides hooks and cookies (neither applies here)."""
        response.request = request
        response.default_encoding = getattr(self, "_default_encoding", "utf-8")
        if response.has_redirect_location:
            # Rare: let httpx build (or refuse, for a Location that is not a URL) the redirect.
            try:
                response.next_request = self._build_redirect_request(request, response)
            except BaseException:
                await response.aclose()
                raise
        return response

    async def fetch_direct(
        self, post: Post, *, limit: int, too_large: TooLarge
    ) -> tuple[DirectAnswer | httpx.Response, bytes] | None:
        """Send `post` and read the whole answer, at most `limit` bytes, with what `asend` and
        `afetch` give any request — admission, the per-phase timeouts (the post's, else the
        client's) cut by the attempt's deadline, httpx's errors — and no httpx request or response.
        None (nothing sent) when httpx's own path must carry the request: auth, hooks, a proxy, or
        a transport that is not aiohttp's."""
        if not self._plain():
            return None
        transport: Any = self._transport_for_url(post.url)
        slots: ConnectionSlots | None = None
        if isinstance(transport, AdmittingTransport):
            slots, transport = transport.slots, transport.inner
        if not isinstance(transport, AiohttpTransport) or transport._proxy is not None:
            return None
        phases = clamp_phases(post.timeout or self.timeout)
        return await transport.fetch_direct(post, phases, slots, (limit, too_large, self._finish))


class DirectAnswer:
    """The status, headers and URL of an answer `AiohttpClient.fetch_direct` read (`_driver.Answer`)."""

    __slots__ = ("headers", "status_code", "url")

    def __init__(self, status_code: int, headers: httpx.Headers, url: httpx.URL) -> None:
        self.status_code = status_code
        self.headers = headers
        self.url = url


_REDIRECTS = frozenset((301, 302, 303, 307, 308))
"""The statuses httpx reads a ``Location`` of (`httpx.Response.has_redirect_location`)."""

_Reading = tuple[int, TooLarge, Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response]]]
"""How to read an answer: the body cap, the error past it, and httpx's finishing of a response (the
rare answer httpx reads itself: a redirect, a compressed body). The httpx request is built only
for those and for an error, which names its request as on the httpx path."""


def _transport_options(options: dict[str, Any]) -> dict[str, Any]:
    keep = ("limits", "verify", "cert", "trust_env")
    return {name: options[name] for name in keep if name in options}
