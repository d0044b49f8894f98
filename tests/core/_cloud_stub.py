"""A programmable HTTP server on 127.0.0.1 for the cloud providers' tests: each route (method,
path) answers with what the test says, and every request is recorded with its path, headers and
body, so a test can check where a provider called and how it authenticated."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: httpx.Headers
    """Case-insensitive, as HTTP header names are."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


Answer = tuple[int, Any]
"""(status, body): a dict/list is sent as JSON, a str as an SSE or text body."""
Route = Callable[[Seen], Answer]


def completion(text: str = "Hello from the stub.", model: str = "stub-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-cloud-stub",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }


def sse(*texts: str, model: str = "stub-model", usage: bool = True) -> str:
    chunks: list[dict[str, Any]] = [
        {"model": model, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]} for text in texts
    ]
    chunks.append({"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append({"model": model, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": len(texts)}})
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def chat_route(seen: Seen) -> Answer:
    """A completion, or a stream when the body asks for one."""
    body = seen.json()
    return (200, sse("Hel", "lo") if body.get("stream") else completion(model=body.get("model", "stub-model")))


@dataclass
class CloudStub:
    routes: dict[tuple[str, str], Route]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def calls(self, path: str) -> list[Seen]:
        return [item for item in self.seen if item.path == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        parts = urlsplit(self.path)
        headers = httpx.Headers(list(self.headers.items()))
        seen = Seen(self.command, parts.path, parse_qs(parts.query), headers, self.rfile.read(length))
        stub = self.server.stub
        stub.seen.append(seen)
        route = stub.routes.get((self.command, parts.path))
        status, body = route(seen) if route else (404, {"error": {"message": f"no route {parts.path}"}})
        if isinstance(body, str):
            raw = body.encode()
            kind = "text/event-stream" if body.startswith("data:") else "text/plain"
        else:
            raw, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: CloudStub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stub = stub


@contextmanager
def cloud_stub(routes: dict[tuple[str, str], Route]) -> Iterator[CloudStub]:
    """A running stub; ``stub.url`` is ``http://127.0.0.1:<port>`` (no path)."""
    stub = CloudStub(routes)
    server = _Server(stub)
    host, port = server.server_address[:2]
    stub.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
