"""The I/O driver: every network call modelmix makes goes through these few functions.

Chat, streams, model listing, Azure ``GET /info`` and profile discovery all send here, so each of
them gets the same per-phase timeouts (shortened by the attempt deadline, never widened), the same
body size cap, the same pool healing after a failed async send and the same careful closing.

Hand-written twins (``send``/``asend``, ``fetch``/``afetch``, ``read_capped``/``aread_capped``)
over pure helpers: each twin is a handful of lines, which is less to maintain than a code
generator and its CI check. `afetch_post` takes a `Post` (a request's parts), so a client able to
send it without httpx request and response objects (the aiohttp client) does; every other client
gets the httpx request through `afetch`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import anyio
import httpx

from ._call_deadline import attempt_end, clamp_phases, headers_read_limit
from ._pool_guard import heal_async_pool
from ._watchdog import Alarm, response_sent, socket_of

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "Answer",
    "AsyncBody",
    "Post",
    "afetch",
    "afetch_post",
    "aread_capped",
    "asend",
    "fetch",
    "new_httpx_async_client",
    "new_sync_client",
    "phase_timeouts",
    "read_capped",
    "request_timeout",
    "send",
    "with_timeout",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=10.0)
"""connect 5 s, write 30 s, pool wait 10 s, and at most 120 s waiting for the server: for its
first byte, and between two reads. A server that accepts and never answers is given up after two
minutes, not ten; a non-streamed answer must be generated within that time (its headers come
only when it is done), so a longer generation should be streamed or given ``timeout=``. Streams
meet their first-token limit (60 s in the wrappers) long before this. Deadlines bound the whole
call; a deadline only ever shortens these."""

DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=20, keepalive_expiry=30.0)
"""Sized for many concurrent calls to one endpoint; idle connections are kept for reuse.

Few idle connections on purpose: httpcore's pool does work proportional to idle × open
connections on every request and response, so 64 kept-alive connections made a warm burst of 200
concurrent calls 3-5x slower than a cold one (benchmarks/README.md). Sequential calls and streams
still reuse one connection."""

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)


class _NoCookieJar(httpx.Cookies):
    """The cookie store of a client modelmix made, which never stores anything.

    modelmix sends the requests it builds itself (``client.send``), and those never carry a
    client's cookies, so collecting them would serve nobody — and httpx collects them through the
    standard library's cookie machinery on every response, at a cost larger than modelmix's whole
    retry wrapper around a call."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _without_cookie_jar(client: ClientT) -> ClientT:
    # httpx has no public switch for this; its store is the `_cookies` attribute behind
    # `client.cookies` (a test checks that it still is).
    client._cookies = _NoCookieJar()
    return client


def new_sync_client() -> httpx.Client:
    """A client for a provider that was given none: modelmix's timeouts and pool limits."""
    return _without_cookie_jar(httpx.Client(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False))


def new_httpx_async_client() -> httpx.AsyncClient:
    """The async `new_sync_client`."""
    return _without_cookie_jar(
        httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False)
    )


MAX_RESPONSE_BYTES = 32 << 20
"""Cap on a non-streamed body: bounded memory whatever the server sends."""

_UNWIND_STEPS = 1024
"""Upper bound on chunks a closed body may still hand out from buffers while it unwinds."""

TooLarge = Callable[[], BaseException]


def phase_timeouts(value: float | httpx.Timeout) -> httpx.Timeout:
    """A timeout given as one number bounds every phase, but never *widens* the library's own
    connect/write/pool defaults: ``timeout=100`` means "read up to 100 s", not "wait 100 s for a
    free pool slot". An `httpx.Timeout` is taken as given."""
    if isinstance(value, httpx.Timeout):
        return value
    seconds = float(value)
    return httpx.Timeout(
        connect=_min(DEFAULT_TIMEOUT.connect, seconds),
        read=seconds,
        write=_min(DEFAULT_TIMEOUT.write, seconds),
        pool=_min(DEFAULT_TIMEOUT.pool, seconds),
    )


def _min(default: float | None, seconds: float) -> float:
    return seconds if default is None else min(default, seconds)


def request_timeout(call: float | httpx.Timeout | None, model: float | httpx.Timeout | None) -> httpx.Timeout | None:
    """The call's ``timeout`` setting, else the model's ``timeout=``; None lets the client's own
    timeout apply (a user's client keeps what they configured on it; ours carries the defaults)."""
    if call is not None:
        return phase_timeouts(call)
    if model is not None:
        return phase_timeouts(model)
    return None


_BASE_TIMEOUT = "modelmix.timeout"
"""Extension key of the timeout a request was built with, before any deadline cut it."""


def with_timeout(request: httpx.Request, timeout: httpx.Timeout | None) -> httpx.Request:
    """Record the call's or model's timeout on `request` (None: the client's own applies)."""
    if timeout is not None:
        request.extensions[_BASE_TIMEOUT] = timeout
    return request


class Post:
    """A POST as modelmix builds it: the address, headers, body bytes, and the call's or model's
    timeout (None: the client's own applies)."""

    __slots__ = ("content", "headers", "timeout", "url")

    def __init__(
        self, url: httpx.URL, headers: Mapping[str, str], content: bytes, timeout: httpx.Timeout | None
    ) -> None:
        self.url = url
        self.headers = headers
        self.content = content
        self.timeout = timeout

    def request(self) -> httpx.Request:
        """This POST as an httpx request (its timeout recorded by `with_timeout`)."""
        request = httpx.Request("POST", self.url, headers=self.headers, content=self.content)
        request.stream = _RequestBody(self.content)
        return with_timeout(request, self.timeout)


class _RequestBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body sent as one chunk, without an async generator.

    httpx's own body stream iterates through an async generator; a call cancelled while httpcore
    is sending it leaves that generator to the garbage collector, which trio reports as an
    unraisable ``ResourceWarning``. An iterator object has nothing to finalise.
    """

    __slots__ = ("_content",)

    def __init__(self, content: bytes) -> None:
        self._content = content

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._content,))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _OneChunk(self._content)


class _OneChunk:
    __slots__ = ("_content",)

    def __init__(self, content: bytes) -> None:
        self._content: bytes | None = content

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        content, self._content = self._content, None
        if content is None:
            raise StopAsyncIteration
        return content


def _stamp(request: httpx.Request, client_timeout: httpx.Timeout) -> None:
    # The attempt deadline is read at send time, not when the request was built: a stream is
    # built at the call site and opened later, inside the attempt.
    base = request.extensions.get(_BASE_TIMEOUT) or client_timeout
    request.extensions["timeout"] = clamp_phases(base)


def send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    """Send and return as soon as the headers arrived; the caller reads and closes the body."""
    _stamp(request, client.timeout)
    phases = request.extensions["timeout"]
    headers_read = headers_read_limit(phases["read"])
    if headers_read is None:
        response = client.send(request, stream=True)
    else:
        # httpcore reads the timeout again when the body starts: the body keeps its own.
        request.extensions["timeout"] = {**phases, "read": headers_read}
        try:
            response = client.send(request, stream=True)
        finally:
            request.extensions["timeout"] = phases
    response_sent(response)
    return response


async def asend(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Async `send`."""
    _stamp(request, client.timeout)
    try:
        return await client.send(request, stream=True)
    except BaseException:
        # A failed or cancelled send is the only way httpcore orphans a pool slot (_pool_guard).
        await heal_async_pool(client)
        raise


def _check_declared_size(response: httpx.Response, limit: int, too_large: TooLarge) -> None:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large()


def read_capped(response: httpx.Response, limit: int, too_large: TooLarge) -> bytes:
    """The whole body, refusing (with `too_large()`) more than `limit` bytes."""
    _check_declared_size(response, limit, too_large)
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large()
        parts.append(chunk)
    return b"".join(parts)


async def aread_capped(response: httpx.Response, limit: int, too_large: TooLarge) -> bytes:
    """Async `read_capped`."""
    _check_declared_size(response, limit, too_large)
    parts: list[bytes] = []
    size = 0
    body = AsyncBody(response)
    read_to_the_end = False
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise too_large()
            parts.append(chunk)
        read_to_the_end = True
    finally:
        if not read_to_the_end:  # a body read to its end has finished its reader chain already
            await body.aclose()
    return b"".join(parts)


def fetch(
    client: httpx.Client, request: httpx.Request, *, limit: int, too_large: TooLarge
) -> tuple[httpx.Response, bytes]:
    """Send, read the capped body and release the connection, whatever happens."""
    response = send(client, request)
    end = attempt_end()
    interrupt = socket_of(response) if end is not None else None
    if end is None or interrupt is None:
        try:
            return response, read_capped(response, limit, too_large)
        finally:
            response.close()
    # httpx's read timeout is per read: a body trickling in would outlive the deadline. A watch
    # interrupts the read at the deadline and the call fails as a timeout (the planner's deadline).
    alarm = Alarm(end, interrupt)
    try:
        return response, read_capped(response, limit, too_large)
    except httpx.TransportError:
        if alarm.fired:
            raise httpx.ReadTimeout("the deadline passed while the body was arriving", request=request) from None
        raise
    finally:
        alarm.stop()
        response.close()


async def afetch(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    limit: int,
    too_large: TooLarge,
) -> tuple[httpx.Response, bytes]:
    """Async `fetch`; the connection is released even inside a cancelled scope."""
    response = await asend(client, request)
    try:
        return response, await aread_capped(response, limit, too_large)
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


class Answer(Protocol):
    """What a fetch tells about the response besides its body (an `httpx.Response` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    @property
    def url(self) -> httpx.URL: ...


async def afetch_post(
    client: httpx.AsyncClient, post: Post, *, limit: int, too_large: TooLarge
) -> tuple[Answer, bytes]:
    """`afetch` of `post`. A client that can send it without building httpx request and response
    objects (the aiohttp client's ``fetch_direct``, which keeps the same timeouts, cap, admission
    and errors) does; any other gets ``post.request()`` through `afetch`."""
    direct: Callable[..., Awaitable[tuple[Answer, bytes] | None]] | None = getattr(client, "fetch_direct", None)
    if direct is not None:
        fetched = await direct(post, limit=limit, too_large=too_large)
        if fetched is not None:
            return fetched
    return await afetch(client, post.request(), limit=limit, too_large=too_large)


class AsyncBody:
    """The body of a streamed async response, closable at any point without leaving work for the
    garbage collector.

    httpx reads a body through a chain of nested async generators (httpx → httpcore). Closing the
    outermost one leaves every inner one suspended; the garbage collector then finalises them,
    which trio reports as a ``ResourceWarning`` per generator. `aclose` therefore closes the
    response first and then resumes the chain once under a cancelled scope: the cancellation is
    raised at the innermost read and travels out through every layer, so each one finishes.
    """

    __slots__ = ("_chunks", "_response", "_started")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The reader chain itself, not a wrapper around it: a wrapper's frame would be paid on
        # every chunk of every stream.
        self._started = True
        return self._chunks

    async def aclose(self) -> None:
        """Release the connection and finish the reader chain. Idempotent; safe when cancelled."""
        with anyio.CancelScope(shield=True):
            await self._response.aclose()
            # An async generator that finished (end of body, a read error) has no frame left.
            if self._started and getattr(self._chunks, "ag_frame", True) is not None:
                await self._unwind()

    async def _unwind(self) -> None:
        # A chain that already finished (end of body, a read error) answers at once.
        self._started = False
        with anyio.CancelScope() as scope:
            scope.cancel()
            for _ in range(_UNWIND_STEPS):
                try:
                    await self._chunks.__anext__()
                except (Exception, anyio.get_cancelled_exc_class()):
                    # StopAsyncIteration, our own cancellation, or a read on the closed socket.
                    return
        closer: Any = getattr(self._chunks, "aclose", None)
        if closer is not None:  # pragma: no cover - a body that kept yielding past the bound
            await closer()
