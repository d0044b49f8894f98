"""`FakeOpenAIServer`: a small, fast OpenAI-compatible HTTP server on 127.0.0.1 for tests, examples
and benchmarks.

It runs an asyncio loop in a background thread, speaks HTTP/1.1 with keep-alive, and answers
``POST …/chat/completions`` (JSON or SSE) and ``GET …/models`` with replies you script. Nothing
leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from ._replies import FakeReply, content_chunks, finish_reason_of, kept_chunks, scripted, tool_call_payload, usage_of
from ._responses_replies import as_chat_request, response_events, response_object

__all__ = ["FakeOpenAIServer", "FakeReply"]


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
        reply: str | FakeReply | Sequence[str | FakeReply] | Responder | None = None,
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
        self._writers: set[asyncio.StreamWriter] = set()

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
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, self._host, self._port, backlog=1024))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _shutdown(self) -> None:
        """Close every connection before the loop goes, so nothing is left for asyncio to report
        (a keep-alive connection a client still holds, a reply sleeping on its `delay`)."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the aborted transports finish closing

    # --------------------------------------------------------------------------- HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
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
                kept = await self._respond(method, path, headers, body, writer)
                await writer.drain()
                if not kept or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # The server is stopping with a client's keep-alive connection still open. Ending the
            # task normally keeps asyncio from logging its cancellation as an error.
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection was cut (a scripted drop)."""
        if self._api_key is not None and headers.get("authorization") != f"Bearer {self._api_key}":
            self._send_json(writer, 401, _error("Incorrect API key provided.", "invalid_api_key"))
            return True
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route.endswith("/models"):
            self._send_json(
                writer,
                200,
                {
                    "object": "list",
                    "data": [{"id": self._model, "object": "model", "created": 0, "owned_by": "modelmix-testing"}],
                },
            )
            return True
        responses_api = route.endswith("/responses")
        if method != "POST" or not (route.endswith("/chat/completions") or responses_api):
            self._send_json(writer, 404, _error(f"no route for {method} {route}", "not_found"))
            return True
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            self._send_json(writer, 400, _error("the body is not JSON", "invalid_json"))
            return True
        self.requests.append(request)
        try:
            # A Responses request reaches the responder as the chat request it stands for.
            produced = self._responder(as_chat_request(request) if responses_api else request)
        except Exception as exc:  # a bug in the test's responder: say so instead of hanging
            self._send_json(writer, 500, _error(f"the responder raised {type(exc).__name__}: {exc}", "responder"))
            return True
        reply = FakeReply(text=produced) if isinstance(produced, str) else produced
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status >= 300:
            self._send_json(writer, reply.status, _error(reply.text or "error", None), reply.headers)
            return True
        if request.get("stream"):
            content: list[Any]
            closing: list[Any]
            if responses_api:
                content, closing = response_events(reply, request, self._model, self._chunks)
            else:
                include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
                usage = _usage(request, reply) if include_usage else None
                content, closing = content_chunks(reply, self._model, self._chunks, usage)
                closing = [*closing, "[DONE]"]
            return await self._send_stream(writer, reply, content, closing)
        if reply.drop_after is not None:
            _cut(writer)
            return False
        answer = response_object(reply, request, self._model) if responses_api else self._completion(request, reply)
        self._send_json(writer, 200, answer, reply.headers)
        return True

    def _head(self, status: int, headers: Mapping[str, str], fields: str) -> bytes:
        extra = {"x-request-id": f"req_fake_{next(self._ids)}", **{k.lower(): v for k, v in headers.items()}}
        lines = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
        return f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\n{fields}{lines}\r\n".encode()

    def _send_json(
        self, writer: asyncio.StreamWriter, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        fields = f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
        writer.write(self._head(status, headers or {}, fields) + data)

    async def _send_stream(
        self, writer: asyncio.StreamWriter, reply: FakeReply, content: list[Any], closing: list[Any]
    ) -> bool:
        """Stream `content` events (cut short by a scripted drop), then `closing` ones; a string
        event (``"[DONE]"``) goes as it is."""
        fields = "content-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        writer.write(self._head(200, reply.headers, fields))
        sent = kept_chunks(reply, content) + (closing if reply.drop_after is None else [])
        events = [e.encode() if isinstance(e, str) else json.dumps(e).encode() for e in sent]
        # One HTTP chunk per SSE event, as real servers send them.
        for index, data in enumerate(events):
            if index and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            if writer.transport.is_closing():
                return False  # the client went away: writing on would only make asyncio complain
            frame = b"data: " + data + b"\n\n"
            writer.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            await writer.drain()
        if reply.drop_after is not None:
            await writer.drain()
            _cut(writer)
            return False
        writer.write(b"0\r\n\r\n")
        return True

    def _completion(self, request: dict[str, Any], reply: FakeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [tool_call_payload(i, c) for i, c in enumerate(reply.tool_calls)]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason_of(reply)}],
            "usage": _usage(request, reply),
        }


def _make_responder(reply: str | FakeReply | Sequence[str | FakeReply] | Responder | None) -> Responder:
    if reply is None:
        return _echo
    if isinstance(reply, (str, FakeReply)):
        return scripted([reply])
    if isinstance(reply, Sequence):
        return scripted(list(reply))
    return reply


def _usage(request: dict[str, Any], reply: FakeReply) -> dict[str, int]:
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
    return usage_of(reply, messages)


def _cut(writer: asyncio.StreamWriter) -> None:
    """Drop the connection the way a crashing server does: a reset, not a clean close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
