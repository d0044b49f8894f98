"""A local stand-in for Azure endpoints on 127.0.0.1, used to record this suite's cassettes.

It checks what the real services check (route shape, api-version, the ``extra-parameters``
header, ``api-key`` or bearer credentials) and answers in Azure's shapes: prompt-filter results,
per-choice content-filter results, the leading stream chunk with empty ``choices``,
``apim-request-id`` and rate-limit headers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "stub-azure-key-5f1e0c9a7b3d4e21"
"""The only key the stub accepts (a test value; it must never appear in cassettes or logs)."""
TOKEN_PREFIX = "stub-entra-token-"
"""Bearer tokens the stub accepts start with this."""

MODEL_INFERENCE_VERSION = "2024-05-01-preview"
_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": _FILTERS}]
_INFO = {"model_name": "Phi-4-mini-instruct", "model_type": "chat-completion", "model_provider_name": "Microsoft"}


class AzureStub:
    """``with AzureStub() as stub: stub.url`` → ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> AzureStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    owner: AzureStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        return

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, *, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("apim-request-id", f"apim-{len(self.owner.requests):04d}")
        self.send_header("x-ratelimit-remaining-requests", "99")
        self.send_header("x-ratelimit-remaining-tokens", "99000")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": {"code": code, "message": message}})

    def _authorised(self) -> bool:
        key = self.headers.get("api-key")
        bearer = self.headers.get("authorization", "")
        if key == KEY or bearer == f"Bearer {KEY}":
            return True
        return bearer.startswith(f"Bearer {TOKEN_PREFIX}")

    def _record(self, body: Any) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.owner.requests.append(
            {
                "method": self.command,
                "path": parts.path,
                "query": {k: v[0] for k, v in query.items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": body,
            }
        )
        return parts.path, query

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        path, query = self._record(None)
        if not self._authorised():
            return self._error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        if path in ("/info", "/models/info") and query.get("api-version") == [MODEL_INFERENCE_VERSION]:
            return self._send(200, _INFO)
        return self._error(404, "404", "Resource not found")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        path, query = self._record(body)
        if not self._authorised():
            return self._error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        route = self._route(path, query, body)
        if route is None:
            return None
        name, deployment = route
        if deployment == "missing":
            return self._error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.",
            )
        last = body["messages"][-1]["content"]
        text = f"[{name}] {last}"
        catalog = name in ("model-inference", "serverless", "serverless-v1")
        model = "Phi-4-mini-instruct" if catalog else "gpt-4o-mini-2024-07-18"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(text, model, usage_last=include_usage, usage_on_finish=catalog)
        return self._send(
            200,
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": 1763800000,
                "model": model,
                "prompt_filter_results": _PROMPT_FILTERS,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                        "content_filter_results": _FILTERS,
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
            },
        )

    def _route(self, path: str, query: dict[str, list[str]], body: Any) -> tuple[str, str] | None:
        """(route name, deployment) or None after answering an error."""
        version = query.get("api-version", [None])[0]
        if path == "/openai/v1/chat/completions":
            return "v1", str(body.get("model"))
        if path.startswith("/openai/deployments/") and path.endswith("/chat/completions"):
            if not version:
                self._error(404, "404", "Resource not found")  # Azure's answer without api-version
                return None
            return "deployments", path.split("/")[3]
        if path in ("/models/chat/completions", "/chat/completions"):
            if version != MODEL_INFERENCE_VERSION:
                self._error(400, "BadRequest", f"unsupported api-version {version}")
                return None
            if self.headers.get("extra-parameters") != "pass-through":
                self._error(422, "Invalid input", "extra-parameters header missing")
                return None
            if path.startswith("/models"):
                if "model" not in body:
                    self._error(400, "BadRequest", "model is required on /models")
                    return None
                return "model-inference", str(body["model"])
            return "serverless", "endpoint"
        if path == "/v1/chat/completions":
            if not self.headers.get("authorization", "").startswith("Bearer "):
                self._error(401, "401", "Authorization header required")
                return None
            return "serverless-v1", "endpoint"
        self._error(404, "404", "Resource not found")
        return None

    def _stream(self, text: str, model: str, *, usage_last: bool, usage_on_finish: bool) -> None:
        usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1763800000, "model": model}
        events: list[dict[str, Any]] = [
            {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": _PROMPT_FILTERS}
        ]
        events.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            delta = {"index": 0, "delta": {"content": piece}, "content_filter_results": _FILTERS}
            events.append({**base, "choices": [delta]})
        finish: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if usage_on_finish:
            finish["usage"] = usage
        events.append(finish)
        if usage_last:
            events.append({**base, "choices": [], "usage": usage})
        data = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events) + "data: [DONE]\n\n"
        self._send(200, data.encode(), content_type="text/event-stream")
