"""The benchmark's mock OpenAI-compatible server: one asyncio process on 127.0.0.1.

It answers every contender with the same precomputed bytes, so the only thing that differs between
contenders is the client. It runs in its own process (`run.py` starts it) so it never shares the
GIL with the client being measured.

- ``POST /v1/chat/completions`` → a fixed completion, or, when the body has ``"stream": true``, an
  SSE stream whose length is taken from the model name: ``bench-stream-<n>`` streams ``n`` content
  chunks, each event in its own HTTP chunk as real servers send them (usage chunk only when
  ``stream_options.include_usage`` is set, like OpenAI).
- ``GET /stats`` → how many connections carried at least one chat request, and how many requests.
- ``POST /stats/reset`` → zero the counters.

Run alone: ``python benchmarks/bench_server.py`` prints ``PORT <n>`` and serves until killed; with
``--exit-with-stdin`` it also exits when its standard input closes, so a server started by a
benchmark that dies (killed, timed out) does not outlive it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import threading
from typing import Any

__all__ = ["COMPLETION_TEXT", "ServerState", "main", "stream_text"]

COMPLETION_TEXT = (
    "Benchmarks measure the client, not the server: this answer is the same bytes for every contender, "
    "precomputed once, so differences in latency come from request building, the HTTP stack and parsing."
)
"""The text of every non-streamed answer."""

_MODEL_RE = re.compile(rb'"model"\s*:\s*"bench-stream-(\d+)"')
_MAX_STREAM_CHUNKS = 1_000_000


def stream_text(chunks: int) -> str:
    """The text a ``bench-stream-<chunks>`` stream carries: the client joins its deltas to this."""
    return "".join(_piece(i) for i in range(chunks))


def _piece(i: int) -> str:
    # Token-sized deltas (a few characters), like a real model's.
    return f" w{i % 1000}"


def _event(payload: dict[str, Any]) -> bytes:
    frame = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return f"{len(frame):x}\r\n".encode() + frame + b"\r\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ServerState:
    """Counters and the precomputed responses."""

    def __init__(self) -> None:
        self.chat_connections = 0
        self.connections = 0
        self.requests = 0
        body = json.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "bench-model",
                "system_fingerprint": "fp_bench",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": COMPLETION_TEXT, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(12, 40),
            },
            separators=(",", ":"),
        ).encode()
        self.completion = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n".encode()
            + b"x-request-id: req_bench\r\n\r\n"
            + body
        )
        self._streams: dict[tuple[int, bool], bytes] = {}

    def stream(self, chunks: int, include_usage: bool) -> bytes:
        key = (chunks, include_usage)
        cached = self._streams.get(key)
        if cached is None:
            cached = self._streams[key] = self._build_stream(chunks, include_usage)
        return cached

    @staticmethod
    def _build_stream(chunks: int, include_usage: bool) -> bytes:
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000}
        base["model"] = "bench-model"
        parts = [
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"x-request-id: req_bench\r\n\r\n",
            _event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        ]
        parts.extend(
            _event({**base, "choices": [{"index": 0, "delta": {"content": _piece(i)}, "finish_reason": None}]})
            for i in range(chunks)
        )
        parts.append(_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if include_usage:
            parts.append(_event({**base, "choices": [], "usage": _usage(12, chunks)}))
        frame = b"data: [DONE]\n\n"
        parts.append(f"{len(frame):x}\r\n".encode() + frame + b"\r\n0\r\n\r\n")
        return b"".join(parts)

    def stats(self) -> bytes:
        body = json.dumps(
            {"chat_connections": self.chat_connections, "connections": self.connections, "requests": self.requests}
        ).encode()
        return _plain(200, body)


def _plain(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _content_length(head: bytes) -> int:
    index = head.lower().find(b"\r\ncontent-length:")
    if index < 0:
        return 0
    end = head.find(b"\r\n", index + 2)
    return int(head[index + 17 : end])


async def _serve(state: ServerState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    state.connections += 1
    carried_chat = False
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            body = await reader.readexactly(length) if length else b""
            method, path, _ = head[: head.find(b"\r\n")].split(b" ", 2)
            if path.startswith(b"/v1/chat/completions") and method == b"POST":
                if not carried_chat:
                    carried_chat = True
                    state.chat_connections += 1
                state.requests += 1
                # Decode like a real server does; the cost is the same for every contender.
                request = json.loads(body)
                if request.get("stream"):
                    match = _MODEL_RE.search(body)
                    chunks = min(int(match.group(1)), _MAX_STREAM_CHUNKS) if match else 20
                    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
                    writer.write(state.stream(chunks, include_usage))
                else:
                    writer.write(state.completion)
            elif path == b"/stats/reset":
                state.chat_connections = state.connections = state.requests = 0
                writer.write(state.stats())
            elif path == b"/stats":
                writer.write(state.stats())
            else:
                writer.write(_plain(404, b'{"error":{"message":"no such route","type":"not_found"}}'))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    state = ServerState()
    server = await asyncio.start_server(
        lambda r, w: _serve(state, r, w), host, port, backlog=4096, limit=1 << 20, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def _exit_at_end_of_stdin() -> None:
    # The parent holds the other end of the pipe; it closes when the parent exits, however it ends.
    sys.stdin.buffer.read()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when standard input closes")
    args = parser.parse_args(argv)
    if args.exit_with_stdin:
        threading.Thread(target=_exit_at_end_of_stdin, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
