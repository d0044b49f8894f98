"""A loopback HTTP/1.1 server that misbehaves on command, for the fault-matrix tests.

It runs its own asyncio loop in a thread, so sync tests and both anyio backends (asyncio and
trio) can use it. Each model in a test gets its own path prefix (``/m/<label>/v1``); behaviours
are queued per label and consumed one request at a time (the last one repeats when the queue
runs dry, or the default `Fault.ok()` if none was queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal[
    "ok",
    "status",
    "reset_before_headers",
    "reset_after_chunks",
    "eof_no_terminator",
    "malformed_json",
    "error_event",
    "slow_drip",
    "stall",
    "silent",
    "oversized_line",
    "redirect",
    "done_keep_open",
    "trickle_body",
    "huge_stream",
]


@dataclass(frozen=True)
class Fault:
    """What the server does with one request."""

    kind: FaultKind = "ok"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    chunks: int = 2
    """Content chunks streamed before the fault (stream faults)."""
    delay: float = 0.0
    """Seconds before answering at all."""
    drip: float = 0.05
    """Seconds between bytes for slow_drip."""
    text: str = "Hello"

    @staticmethod
    def ok(text: str = "Hello", *, delay: float = 0.0) -> Fault:
        return Fault("ok", text=text, delay=delay)

    @staticmethod
    def error(status: int, body: Any = None, *, headers: dict[str, str] | None = None, delay: float = 0.0) -> Fault:
        default = {"error": {"message": f"injected {status}", "type": "server_error" if status >= 500 else "error"}}
        return Fault(
            "status",
            status=status,
            headers=tuple((headers or {}).items()),
            body=default if body is None else body,
            delay=delay,
        )


@dataclass
class Seen:
    label: str
    path: str
    body: dict[str, Any]
    at: float


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _delta(text: str, model: str) -> dict[str, Any]:
    return {"id": "c1", "model": model, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def _finish(model: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


class FaultServer:
    """Start with `start()` (or as a context manager); `url(label)` is a model's base URL."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._scripts: dict[str, deque[Fault]] = defaultdict(deque)
        self._last: dict[str, Fault] = {}
        self._random: dict[str, tuple[random.Random, list[Fault], list[float]]] = {}
        self.seen: list[Seen] = []
        self.injected: dict[str, int] = defaultdict(int)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self.open_connections = 0

    # ------------------------------------------------------------------------------ control

    def url(self, label: str) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/m/{label}/v1"

    def script(self, label: str, *faults: Fault) -> None:
        with self._lock:
            self._scripts[label].extend(faults)

    def randomize(self, label: str, faults: list[Fault], weights: list[float], seed: int) -> None:
        """Draw each request's behaviour at random (seeded) instead of from the script."""
        with self._lock:
            self._random[label] = (random.Random(seed), faults, weights)

    def count(self, label: str | None = None) -> int:
        return sum(1 for s in self.seen if label is None or s.label == label)

    def order(self) -> list[str]:
        return [s.label for s in self.seen]

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._random.clear()
            self._last.clear()
            self.seen.clear()
            self.injected.clear()

    def _next(self, label: str) -> Fault:
        with self._lock:
            drawn = self._random.get(label)
            if drawn is not None:
                rng, faults, weights = drawn
                return rng.choices(faults, weights)[0]
            queue = self._scripts[label]
            if queue:
                fault = queue.popleft()
                self._last[label] = fault
                return fault
            return self._last.get(label, Fault.ok())

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> FaultServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 22, ssl=self._ssl)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ serving

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.open_connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                try:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                except asyncio.IncompleteReadError:
                    return  # the client gave up mid-request
                if path == "/_stats":
                    stats = json.dumps({"injected": dict(self.injected), "seen": len(self.seen)}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(stats) + stats)
                    await writer.drain()
                    continue
                label = path.split("/")[2] if path.startswith("/m/") else "default"
                data = json.loads(body) if body else {}
                self.seen.append(Seen(label, path, data, time.monotonic()))
                fault = self._next(label)
                self.injected[fault.kind if fault.kind != "status" else f"status_{fault.status}"] += 1
                keep = await self._respond(fault, writer, data)
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _respond(self, fault: Fault, writer: asyncio.StreamWriter, request: dict[str, Any]) -> bool:
        """Send the response; False when the connection must not be reused."""
        if fault.delay:
            await asyncio.sleep(fault.delay)
        model = str(request.get("model", "m"))
        streaming = bool(request.get("stream"))
        kind = fault.kind
        if kind == "silent":
            await asyncio.sleep(3600)
            return False
        if kind == "reset_before_headers":
            self._reset(writer)
            return False
        if kind == "status":
            payload = json.dumps(fault.body).encode() if not isinstance(fault.body, bytes) else fault.body
            extra = "".join(f"{k}: {v}\r\n" for k, v in fault.headers)
            writer.write(
                f"HTTP/1.1 {fault.status} Injected\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\n{extra}\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        if kind == "redirect":
            writer.write(
                b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://elsewhere.invalid/v1/chat/completions\r\n"
                b"content-length: 0\r\n\r\n"
            )
            await writer.drain()
            return True
        if kind == "trickle_body":
            # A complete JSON answer whose body arrives one byte per `drip` seconds.
            payload = json.dumps(_completion(fault.text, model)).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
            )
            for byte in payload:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(fault.drip)
            return True
        if kind == "ok" and not streaming:
            payload = json.dumps(_completion(fault.text, model)).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req-ok\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        # Everything else is a chunked SSE response.
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"x-request-id: req-stream\r\n\r\n"
        )
        if kind == "huge_stream" or (kind in ("stall", "slow_drip") and fault.chunks == 0):
            await writer.drain()
        else:
            for index in range(fault.chunks if kind != "ok" else len(fault.text)):
                piece = fault.text[index] if kind == "ok" else f"w{index} "
                writer.write(_chunk(_sse(_delta(piece, model))))
            await writer.drain()
        if kind == "done_keep_open":
            # A complete answer, [DONE] included, on a connection that then stays open silently.
            writer.write(_chunk(_sse(_finish(model)) + b"data: [DONE]\n\n"))
            await writer.drain()
            await asyncio.sleep(3600)
            return False
        if kind == "huge_stream":
            # `chunks` deltas of `text` each, then a proper end: only the total size is wrong.
            for _ in range(fault.chunks):
                writer.write(_chunk(_sse(_delta(fault.text, model))))
                try:
                    await writer.drain()
                except ConnectionError:
                    return False
            writer.write(_chunk(_sse(_finish(model)) + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            return True
        if kind == "ok":
            writer.write(_chunk(_sse(_finish(model)) + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            return True
        if kind == "reset_after_chunks":
            await asyncio.sleep(0.01)
            self._reset(writer)
            return False
        if kind == "eof_no_terminator":
            writer.write(b"0\r\n\r\n")  # a clean end of the HTTP body, but no [DONE] / finish_reason
            await writer.drain()
            return True
        if kind == "malformed_json":
            writer.write(_chunk(b'data: {"choices": [{"delta": {"content": "x"\n\n') + b"0\r\n\r\n")
            await writer.drain()
            return True
        if kind == "error_event":
            error = fault.body or {"error": {"message": "injected in-band", "type": "server_error"}}
            writer.write(_chunk(_sse(error)) + b"0\r\n\r\n")
            await writer.drain()
            return True
        if kind == "oversized_line":
            line = b"data: " + b"x" * ((1 << 20) + 10)
            writer.write(_chunk(line))
            try:
                await writer.drain()
            except ConnectionError:
                return False
            await asyncio.sleep(3600)
            return False
        if kind == "slow_drip":
            for byte in b": keep-alive\n\n" * 1000:
                writer.write(_chunk(bytes([byte])))
                await writer.drain()
                await asyncio.sleep(fault.drip)
            return False
        if kind == "stall":
            await asyncio.sleep(3600)
            return False
        raise AssertionError(f"unknown fault {kind}")


@contextlib.contextmanager
def running() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


def _serve_in_child(pipe: Any, randomized: dict[str, tuple[list[Fault], list[float], int]]) -> None:
    server = FaultServer().start()
    for label, (faults, weights, seed) in randomized.items():
        server.randomize(label, faults, weights, seed)
    pipe.send(server.port)
    pipe.recv()  # anything: stop
    server.stop()


class FaultServerProcess:
    """The same server in a child process, for load tests: the client then has a core (and the
    GIL) to itself. Only randomized behaviour; counters come from ``stats()``."""

    def __init__(self, randomized: dict[str, tuple[list[Fault], list[float], int]]) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_in_child, args=(child, randomized), daemon=True)
        self.port = 0

    def url(self, label: str) -> str:
        return f"http://127.0.0.1:{self.port}/m/{label}/v1"

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as answer:
            data: dict[str, Any] = json.loads(answer.read())
            return data

    def __enter__(self) -> FaultServerProcess:
        self._process.start()
        self.port = self._pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self._process.join(10)
        self._pipe.close()
