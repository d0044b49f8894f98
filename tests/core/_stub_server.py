"""A tiny OpenAI-style HTTP server on 127.0.0.1 for tests that need a real socket.

``POST /v1/chat/completions`` answers by the requested model name:

- ``held-stream``: an SSE stream that sends two chunks, then waits until the test calls
  `StubServer.release` before sending the rest (so a client provably leaves mid-stream);
- ``missing-model``: 404 with an OpenAI error body;
- anything else: a normal completion, streamed as SSE when ``"stream": true``.

A request whose bearer token is not `StubServer.key` gets a 401 whose message echoes the key it
received, like servers that print the rejected credential.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STUB_KEY = "sk-stub-valid-key-000000000000"


def _chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "model": "stub-model-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for access logs."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        auth = self.headers.get("authorization", "")
        if auth != f"Bearer {self.server.key}":
            given = auth.removeprefix("Bearer ")
            self._json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {given}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        model = body.get("model")
        if model == "missing-model":
            self._json(
                404,
                {
                    "error": {
                        "message": "The model `missing-model` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        elif body.get("stream"):
            self._stream(held=model == "held-stream")
        else:
            self._json(
                200,
                {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "model": "stub-model-1",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hello there."},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
                },
            )

    def _json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.send_header("x-request-id", "req_stub_0001")
        self.send_header("set-cookie", "session=stub-cookie-value; Path=/")
        self.end_headers()
        self.wfile.write(raw)

    def _stream(self, *, held: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", "req_stub_0002")
        self.end_headers()
        events = [_chunk("Hel"), _chunk("lo"), _chunk(" world"), _chunk(finish="stop")]
        events.append({"choices": [], "model": "stub-model-1", "usage": {"prompt_tokens": 9, "completion_tokens": 3}})
        try:
            for number, event in enumerate(events):
                if held and number == 2:
                    self.server.released.wait(timeout=10)
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.key = key
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.connections = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a test leaving a stream early) is expected, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class StubServer:
    """Handle on a running server: `base_url`, `requests` seen, `connections` accepted."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.requests

    @property
    def connections(self) -> int:
        return self._server.connections

    def release(self) -> None:
        """Let held streams finish."""
        self._server.released.set()


@contextmanager
def running_stub(key: str = STUB_KEY) -> Iterator[StubServer]:
    server = _Server(key)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield StubServer(server)
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
