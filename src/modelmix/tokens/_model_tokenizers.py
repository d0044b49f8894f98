"""Tokenizers that belong to a model object: the in-process model's own, and a llama.cpp server's.

**In-process** (``local:``): the conversation is rendered with the GGUF's own chat template and
counted by its tokenizer — the same prompt llama.cpp evaluates, so the count is exact. The
weights are loaded if they were not (``aload`` does it in a worker thread).

**A llama.cpp server** (a ``llamacpp:`` model object, never a model *string*): the text of the
request is sent to the server's tokenizer in one request — ``POST /tokenize``
(``{"content": ...}``, llama.cpp's ``llama-server``) or, where that answers 404,
``POST /extras/tokenize`` (``{"input": ...}``, llama-cpp-python's ``python -m llama_cpp.server``);
the one that answered is remembered per server. Neither server renders a chat template for a
caller, so the framing around the text is estimated and the count is not exact. The request has
a short timeout (2 s unless ``timeout=`` says otherwise); when it fails the count falls back to
the offline estimate and says why.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpx

from .._driver import afetch, fetch, with_timeout
from .._exceptions import ModelMixError
from .._messages import Message

if TYPE_CHECKING:
    from .._http import HTTPModel
    from ..providers.local import LocalModel

__all__ = ["alocal_prompt_tokens", "aserver_text_tokens", "local_prompt_tokens", "server_text_tokens"]

_ROUTES: tuple[tuple[str, str], ...] = (("/tokenize", "content"), ("/extras/tokenize", "input"))
_known_route: dict[str, tuple[str, str]] = {}
_route_lock = threading.Lock()
_MAX_REPLY = 64 * 1024 * 1024
"""A tokenize answer lists one number per token: generous for any prompt, bounded all the same."""


class TokenizerUnavailable(Exception):
    """The server's tokenizer could not be used (the reason is the message)."""


def local_prompt_tokens(model: LocalModel, messages: Sequence[Message], tools: list[dict[str, Any]]) -> int | None:
    """Exact prompt tokens on the in-process model, or None when its template can't render them."""
    from ..providers._local_request import encode_message

    runtime = model.load()
    return runtime.count_prompt_tokens([encode_message(m) for m in messages], tools or None)


async def alocal_prompt_tokens(
    model: LocalModel, messages: Sequence[Message], tools: list[dict[str, Any]]
) -> int | None:
    """Async `local_prompt_tokens`: loading and rendering run in a worker thread."""
    return await anyio.to_thread.run_sync(local_prompt_tokens, model, messages, tools)


def _root(model: HTTPModel) -> httpx.URL:
    path = model.base_url.path.rstrip("/")
    return model.base_url.copy_with(path=path.removesuffix("/v1"))


def _routes(model: HTTPModel) -> list[tuple[str, str]]:
    known = _known_route.get(str(_root(model)))
    return [known] if known is not None else list(_ROUTES)


def _request(
    model: HTTPModel, route: tuple[str, str], text: str, timeout: float, auth: Mapping[str, str] | None = None
) -> httpx.Request:
    path, field = route
    root = _root(model)
    body = json.dumps({field: text}).encode("utf-8")
    request = httpx.Request("POST", root.copy_with(path=root.path.rstrip("/") + path), content=body)
    return with_timeout(model._discovery(request, auth), httpx.Timeout(timeout))


def _token_count(model: HTTPModel, route: tuple[str, str], status: int, body: bytes) -> int | None:
    """The count from a tokenize answer; None when this route does not exist on the server."""
    if status in (404, 405):
        return None
    if status >= 300:
        raise TokenizerUnavailable(f"{route[0]} answered HTTP {status}")
    try:
        tokens = json.loads(body).get("tokens")
    except (ValueError, AttributeError):
        tokens = None
    if not isinstance(tokens, list):
        raise TokenizerUnavailable(f"{route[0]} answered without a token list")
    with _route_lock:
        _known_route[str(_root(model))] = route
    return len(tokens)


@contextlib.contextmanager
def _asking(model: HTTPModel, route: tuple[str, str]) -> Iterator[None]:
    """Any failure to get an answer (connection, timeout, oversized body) makes the tokenizer
    unavailable; the count then falls back to the estimate."""
    try:
        with model._translate("sent_no_response"):
            yield
    except ModelMixError as exc:
        raise TokenizerUnavailable(f"{route[0]} failed: {exc}") from None


_NO_ENDPOINT = "the server has no tokenize endpoint (/tokenize, /extras/tokenize)"


def server_text_tokens(model: HTTPModel, text: str, *, timeout: float) -> int:
    """Tokens of `text` by the server's own tokenizer; `TokenizerUnavailable` when it can't tell."""
    for route in _routes(model):
        request = _request(model, route, text, timeout)
        with _asking(model, route):
            response, body = fetch(model._sync_client(), request, limit=_MAX_REPLY, too_large=model._too_large)
        count = _token_count(model, route, response.status_code, body)
        if count is not None:
            return count
    raise TokenizerUnavailable(_NO_ENDPOINT)


async def aserver_text_tokens(model: HTTPModel, text: str, *, seconds: float) -> int:
    """Async `server_text_tokens`."""
    for route in _routes(model):
        request = _request(model, route, text, seconds, await model._async_auth())
        with _asking(model, route):
            answer = await afetch(model._async_client(), request, limit=_MAX_REPLY, too_large=model._too_large)
        count = _token_count(model, route, answer[0].status_code, answer[1])
        if count is not None:
            return count
    raise TokenizerUnavailable(_NO_ENDPOINT)
