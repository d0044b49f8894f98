"""What every contender shares: the request they all send, the two client interfaces, and the
environment that keeps peer libraries on 127.0.0.1.

Every contender sends ``{"model", "messages": [one user message]}`` (plus ``"stream": true`` and
``stream_options.include_usage`` for streams, which modelmix and the openai SDK send by default) and
returns the answer's text, or yields the streamed text deltas in order.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = [
    "API_KEY",
    "CHAT_MODEL",
    "HEADERS",
    "LOCAL_ONLY_ENV",
    "MESSAGES",
    "PROMPT",
    "AsyncContender",
    "SyncContender",
    "forbid_network",
    "keep_peers_local",
    "request_body",
    "sse_delta",
    "sse_delta_bytes",
    "stream_model",
]

API_KEY = "sk-bench-not-a-real-key"
PROMPT = "Say something about benchmarks."
CHAT_MODEL = "bench-model"
MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]
HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}

LOCAL_ONLY_ENV = {
    # LiteLLM fetches its model cost map from GitHub when it is imported (with retries that take
    # seconds when there is no network), and other catalogs on first use; these make it use the
    # copies it ships with. Set before any peer is imported, and inherited by every child process
    # (import-time and memory workers).
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_OFFLINE_MODE": "true",
}
"""Environment that keeps the peers from reaching the network: the benchmark only ever talks to the
mock server on 127.0.0.1."""


def keep_peers_local() -> None:
    """Apply `LOCAL_ONLY_ENV` to this process (and so to the children it starts); an explicit
    setting already in the environment is kept."""
    for name, value in LOCAL_ONLY_ENV.items():
        os.environ.setdefault(name, value)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", b"127.0.0.1", b"::1", b"localhost"})
_WATCHED = frozenset({"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"})


def forbid_network() -> list[str]:
    """Block, and record, every attempt of this process to resolve or reach a host other than
    loopback (a `sys.addaudithook`, which can't be removed again). Returns the list the attempts are
    recorded in, so a run can fail even when a library swallows the error (LiteLLM falls back to
    its bundled catalogs quietly).

    `run.py` uses it for quick runs (what CI runs): a hook is called for every audited event, and
    the openai SDK fires about twenty per call, so full runs leave it out to charge nobody for it."""
    attempts: list[str] = []

    def guard(event: str, args: tuple[Any, ...]) -> None:
        if event not in _WATCHED:
            return
        address = args[1] if event in ("socket.connect", "socket.sendto") else args[0]
        host = address[0] if isinstance(address, tuple) else address
        if host is None or host in _LOOPBACK or (event == "socket.connect" and isinstance(address, str | bytes)):
            return  # no host (a local lookup), loopback, or a Unix socket path
        attempts.append(f"{event} {host!r}")
        raise ConnectionRefusedError(f"the benchmark only talks to 127.0.0.1 (tried {event} {host!r})")

    sys.addaudithook(guard)
    return attempts


def stream_model(chunks: int) -> str:
    """The model name that makes the mock server stream `chunks` content chunks."""
    return f"bench-stream-{chunks}"


def request_body(model: str, *, stream: bool) -> bytes:
    """The JSON body the hand-written raw-transport clients send (the SDKs build the same one)."""
    body: dict[str, Any] = {"model": model, "messages": MESSAGES}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def sse_delta(line: str) -> str | None:
    """The text in one SSE line (without its line break), if it carries any: hand-written, as a
    raw-httpx user would."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    return _content(line[6:])


def sse_delta_bytes(line: bytes) -> str | None:
    """The same for a raw line as aiohttp's ``response.content`` yields it (line break included)."""
    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
        return None
    return _content(line[6:])


def _content(payload: str | bytes) -> str | None:
    choices = json.loads(payload)["choices"]
    if not choices:
        return None
    content: str | None = choices[0]["delta"].get("content")
    return content or None


class SyncContender:
    """A blocking client."""

    def chat(self) -> str:
        raise NotImplementedError

    def stream(self, model: str) -> Iterator[str]:
        raise NotImplementedError

    def close(self) -> None:
        return None


class AsyncContender:
    """An asyncio client; used on one long-lived event loop."""

    async def chat(self) -> str:
        raise NotImplementedError

    def stream(self, model: str) -> AsyncIterator[str]:
        raise NotImplementedError

    async def close(self) -> None:
        return None
