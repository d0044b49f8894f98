"""The aiohttp transport's direct path: a non-streamed call sent from its parts, with no httpx
request or response objects, behaves exactly like the httpx transport — the same errors for a body
cut short or reset, the body cap with and without a declared length, compressed bodies decoded
(and capped decoded), and a cancelled call's connection and admission slot given back."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import modelmix as mm
from modelmix._driver import Post
from modelmix.providers.openai import OpenAIModel

from .conftest import CANARY, assert_pool_released, refused_url
from .faultserver import Fault, FaultServer

pytest.importorskip("aiohttp", reason="the aiohttp transport needs pip install 'modelmix[aiohttp]'")

ANSWER = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
).encode()

Respond = Callable[[asyncio.StreamWriter], Any]
"""Writes one raw HTTP answer (and may then hang up, reset, or wait)."""


class RawServer:
    """A loopback server that reads each request and answers it with `respond` (raw bytes)."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.requests += 1
                if await self.respond(writer) is False:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()


def _head(status: int = 200, *extra: str, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "content-type: application/json", "x-request-id: req-raw", *extra]
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(body: bytes, size: int = 100) -> bytes:
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces) + b"0\r\n\r\n"


def _model(url: str, transport: str, **options: Any) -> OpenAIModel:
    return OpenAIModel("m", api_key=CANARY, base_url=url, timeout=5.0, transport=transport, **options)  # type: ignore[arg-type]


async def _outcome(url: str, transport: str, **options: Any) -> tuple[Any, ...]:
    async with _model(url, transport, **options) as model:
        try:
            answer = await model.achat("hi")
        except mm.ModelMixError as error:
            assert_pool_released(model)
            kind, status = getattr(error, "kind", None), getattr(error, "status", None)
            phase = getattr(error, "phase", None)
            return (type(error).__name__, kind, phase, error.retryable, status, str(error))
        assert_pool_released(model)
        return ("ok", answer.text, answer.request_id)


async def _both(respond: Respond, **options: Any) -> dict[str, tuple[Any, ...]]:
    outcomes = {}
    async with RawServer(respond) as server:
        for transport in ("httpx", "aiohttp"):
            outcomes[transport] = await _outcome(server.url, transport, **options)
    return outcomes


@pytest.fixture
def no_httpx_messages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every httpx request and response built from here on."""
    built: list[str] = []
    for cls in (httpx.Request, httpx.Response):
        original = cls.__init__

        def counting(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            built.append(type(self).__name__)
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    return built


async def test_a_whole_answer_is_fetched_without_httpx_objects(
    server: FaultServer, no_httpx_messages: list[str]
) -> None:
    server.script("direct", Fault.ok("Hi there"))
    async with _model(server.url("direct"), "aiohttp") as model:
        answer = await model.achat("hi")
        assert (answer.text, answer.request_id) == ("Hi there", "req-ok")
        assert no_httpx_messages == []
        assert_pool_released(model)


async def test_a_chunked_answer_reads_the_same_on_both_transports() -> None:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, "transfer-encoding: chunked") + _chunked(ANSWER))

    outcomes = await _both(respond)
    assert outcomes["aiohttp"] == outcomes["httpx"] == ("ok", "Hello", "req-raw")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_the_body_cap_holds_on_both_transports(declared: bool) -> None:
    body = ANSWER + b" " * 5000

    async def respond(writer: asyncio.StreamWriter) -> None:
        if declared:
            writer.write(_head(200, length=len(body)) + body)
        else:
            writer.write(_head(200, "transfer-encoding: chunked") + _chunked(body))

    outcomes = await _both(respond, max_response_bytes=4096)
    assert outcomes["aiohttp"] == outcomes["httpx"]
    assert outcomes["httpx"][0] == "ResponseTooLargeError"


async def test_a_compressed_answer_is_decoded_and_capped_decoded() -> None:
    packed = gzip.compress(ANSWER + b" " * 20000)
    assert len(packed) < 4096

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, "content-encoding: gzip", length=len(packed)) + packed)

    assert (await _both(respond))["aiohttp"] == ("ok", "Hello", "req-raw")
    outcomes = await _both(respond, max_response_bytes=4096)
    assert outcomes["aiohttp"] == outcomes["httpx"]
    assert outcomes["httpx"][0] == "ResponseTooLargeError"


@pytest.mark.parametrize(
    "location", ["http://elsewhere.invalid/v1", "http://[::1:not-a-url/v1"], ids=["url", "malformed"]
)
async def test_a_redirect_reads_the_same_on_both_transports(location: str) -> None:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(_head(302, f"location: {location}", length=0))

    outcomes = await _both(respond)
    assert outcomes["aiohttp"] == outcomes["httpx"]
    assert outcomes["httpx"][0] == "UnexpectedRedirectError"


@pytest.mark.parametrize("reset", [False, True], ids=["clean-close", "reset"])
async def test_a_body_cut_short_reads_the_same_on_both_transports(reset: bool) -> None:
    async def respond(writer: asyncio.StreamWriter) -> bool:
        writer.write(_head(200, length=len(ANSWER)) + ANSWER[:40])
        await writer.drain()
        if reset:  # SO_LINGER 0: closing sends a reset rather than a clean end of stream
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return False  # hang up 40 bytes into the body

    outcomes = await _both(respond)
    assert outcomes["aiohttp"] == outcomes["httpx"]
    assert outcomes["httpx"][0] == "TransportError"


async def test_a_call_cancelled_while_the_body_arrives_gives_its_connection_and_slot_back() -> None:
    release = anyio.Event()

    async def respond(writer: asyncio.StreamWriter) -> bool:
        writer.write(_head(200, length=len(ANSWER)) + ANSWER[:40])
        await writer.drain()
        await release.wait()
        return False

    async with RawServer(respond) as server, _model(server.url, "aiohttp") as model:
        with anyio.move_on_after(0.5) as scope:
            await model.achat("hi")
        assert scope.cancelled_caught
        assert_pool_released(model)
        release.set()

        async def answer(writer: asyncio.StreamWriter) -> None:
            writer.write(_head(200, length=len(ANSWER)) + ANSWER)

        server.respond = answer
        assert (await model.achat("hi")).text == "Hello"  # the pool still lends connections
        assert_pool_released(model)


async def test_a_refused_connection_names_the_address_on_the_direct_path() -> None:
    url = refused_url()
    async with _model(url, "aiohttp") as model:
        with pytest.raises(mm.TransportError) as caught:
            await model.achat("hi")
    assert caught.value.kind == "connect"
    assert caught.value.url == f"{url}/chat/completions"
    assert CANARY not in repr(caught.value.__cause__)


async def test_a_client_with_hooks_or_auth_takes_httpx_path() -> None:
    from modelmix._aiohttp_transport import AiohttpClient

    async def hook(request: httpx.Request) -> None:
        return None

    def too_large() -> Exception:
        return AssertionError("not reached")

    post = Post(httpx.URL("http://127.0.0.1:9/v1/chat/completions"), {}, b"{}", None)
    for client in (AiohttpClient(event_hooks={"request": [hook]}), AiohttpClient(auth=("user", "secret"))):
        async with client:
            fetched = await client.fetch_direct(post, limit=10, too_large=too_large)
            assert fetched is None  # nothing sent: httpx's own send path carries the request
