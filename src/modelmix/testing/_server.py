"""`FakeOpenAIServer`: a small, fast OpenAI-compatible HTTP server on 127.0.0.1 for tests, examples
and benchmarks.

It runs an asyncio loop in a background thread, speaks HTTP/1.1 with keep-alive, and answers
``POST …/chat/completions`` (JSON or SSE) and ``GET …/models`` with replies you script. Nothing
leaves the machine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["FakeOpenAIServer", "FakeReply"]


@dataclass(frozen=True)
class FakeReply:
    """What the fake server answers: text and/or tool calls (``{"name": ..., "arguments": {...}}``)."""

    text: str = ""
    tool_calls: list[Mapping[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: int = 200
    """An error status answers with an OpenAI-style error body carrying `text` as the message."""


Responder = Callable[[dict[str, Any]], "FakeReply | str"]


def _echo(request: dict[str, Any]) -> FakeReply:
    messages = request.get("messages") or [{}]
    last = messages[-1].get("content") if isinstance(messages[-1], dict) else ""
    return FakeReply(text=f"You said: {last}" if isinstance(last, str) else "You sent content parts.")


class FakeOpenAIServer:
    """A scripted OpenAI-compatible server:

    ```python
    with FakeOpenAIServer(reply="Hello!") as server:
        model = mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test")
        assert model.chat("Hi").text == "Hello!"
    ```

    `reply` is a fixed string, a `FakeReply`, a list of them (served in turn, the last repeats) or a
    callable receiving the decoded request body. `requests` records every decoded body received.
    `chunks` is how many SSE content chunks a streamed text is cut into.
    """

    def __init__(
        self,
        reply: str | FakeReply | list[str | FakeReply] | Responder | None = None,
        *,
        api_key: str | None = None,
        model: str = "fake-model-1",
        chunks: int = 4,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._responder = _make_responder(reply)
        self._api_key = api_key
        self._model = model
        self._chunks = max(1, chunks)
        self._host = host
        self._port = port
        self.requests: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._ids = itertools.count(1)

    # --------------------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The TCP port the server listens on (a free one, unless `port=` was given)."""
        if self._server is None:
            raise RuntimeError("the server is not running; use it as a context manager or call start()")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving in a background thread; prefer ``with FakeOpenAIServer(...) as server:``."""
        self._thread = threading.Thread(target=self._run, name="modelmix-fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):  # pragma: no cover - the loop failed to start
            raise RuntimeError("the fake server did not start")
        return self

    def stop(self) -> None:
        """Stop the server and its thread. Safe to call more than once."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, self._host, self._port))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    # --------------------------------------------------------------------------- HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.decode("latin-1").partition("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_block.split("\r\n"):
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                await self._respond(method, path, headers, body, writer)
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # The server is stopping with a client's keep-alive connection still open. Ending the
            # task normally keeps asyncio from logging its cancellation as an error.
            pass
        finally:
            writer.close()

    async def _respond(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        if self._api_key is not None and headers.get("authorization") != f"Bearer {self._api_key}":
            return self._send_json(writer, 401, _error("Incorrect API key provided.", "invalid_api_key"))
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route.endswith("/models"):
            return self._send_json(
                writer,
                200,
                {
                    "object": "list",
                    "data": [{"id": self._model, "object": "model", "created": 0, "owned_by": "modelmix-testing"}],
                },
            )
        if method != "POST" or not route.endswith("/chat/completions"):
            return self._send_json(writer, 404, _error(f"no route for {method} {route}", "not_found"))
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            return self._send_json(writer, 400, _error("the body is not JSON", "invalid_json"))
        self.requests.append(request)
        produced = self._responder(request)
        reply = FakeReply(text=produced) if isinstance(produced, str) else produced
        if reply.status >= 400:
            return self._send_json(writer, reply.status, _error(reply.text or "error", None))
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            await self._send_stream(writer, request, reply, include_usage)
            return None
        return self._send_json(writer, 200, self._completion(request, reply))

    def _send_json(self, writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\nx-request-id: req_fake_{next(self._ids)}\r\n\r\n".encode()
            + data
        )

    async def _send_stream(
        self, writer: asyncio.StreamWriter, request: dict[str, Any], reply: FakeReply, include_usage: bool
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            + f"x-request-id: req_fake_{next(self._ids)}\r\n\r\n".encode()
        )
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model,
        }
        events: list[dict[str, Any]] = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ]
        for piece in _split(reply.text, self._chunks):
            events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
        for index, call in enumerate(reply.tool_calls):
            events.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": index,
                                        "id": f"call_fake_{index}",
                                        "type": "function",
                                        "function": {
                                            "name": call["name"],
                                            "arguments": json.dumps(call.get("arguments", {})),
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                }
            )
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": _finish(reply)}]})
        if include_usage:
            events.append({**base, "choices": [], "usage": _usage(request, reply)})
        payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        # One HTTP chunk per SSE event, as real servers send them.
        for part in payload.split(b"\n\n")[:-1]:
            frame = part + b"\n\n"
            writer.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    def _completion(self, request: dict[str, Any], reply: FakeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_fake_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
                }
                for i, c in enumerate(reply.tool_calls)
            ]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
            "usage": _usage(request, reply),
        }


def _make_responder(reply: str | FakeReply | list[str | FakeReply] | Responder | None) -> Responder:
    if reply is None:
        return _echo
    if isinstance(reply, (str, FakeReply)):
        fixed = reply
        return lambda _request: fixed
    if isinstance(reply, list):
        queue = list(reply)
        if not queue:
            raise ValueError("reply=[] gives the server nothing to answer")

        def next_reply(_request: dict[str, Any]) -> FakeReply | str:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        return next_reply
    return reply


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _finish(reply: FakeReply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _usage(request: dict[str, Any], reply: FakeReply) -> dict[str, int]:
    prompt = reply.input_tokens
    if prompt is None:
        words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []) if isinstance(m, dict))
        prompt = words + 3 * len(request.get("messages", []))
    completion = reply.output_tokens if reply.output_tokens is not None else max(1, len(reply.text.split()))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
