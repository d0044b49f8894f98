"""Cookies: modelmix sends the requests it builds itself, which never carry a client's cookies,
so the clients it makes don't collect any (httpx would parse every response's headers through the
standard library's cookie machinery to fill a jar nobody reads). A user's own client keeps
httpx's behaviour."""

from __future__ import annotations

import http.cookiejar
import json
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

import modelmix as mm
from modelmix._driver import new_httpx_async_client, new_sync_client

from ._loopback import serving

_ANSWER = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
).encode()


class _SetsCookies(BaseHTTPRequestHandler):
    seen_cookie_headers: ClassVar[list[str | None]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).seen_cookie_headers.append(self.headers.get("cookie"))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "affinity=abc; Path=/")
        self.send_header("content-length", str(len(_ANSWER)))
        self.end_headers()
        self.wfile.write(_ANSWER)


def test_httpx_keeps_its_cookie_store_where_modelmix_replaces_it() -> None:
    # The one httpx internal modelmix relies on here: `client.cookies` is the `_cookies` attribute.
    for client in (new_sync_client(), httpx.Client()):
        with client:
            assert client.cookies is client._cookies


async def test_the_async_client_collects_no_cookies_either() -> None:
    client = new_httpx_async_client()
    try:
        assert type(client.cookies).__name__ == "_NoCookieJar"
    finally:
        await client.aclose()


def test_a_model_answers_without_touching_the_standard_cookie_machinery(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("cookies were parsed")

    monkeypatch.setattr(http.cookiejar.CookieJar, "extract_cookies", refuse)
    _SetsCookies.seen_cookie_headers = []
    with serving(_SetsCookies) as base_url:
        model = mm.model("openai:gpt-4o-mini", base_url=base_url, api_key="sk-test", max_retries=0)
        assert model.chat("hello").text == "hi"
        assert model.chat("again").text == "hi"
        model.close()
    assert _SetsCookies.seen_cookie_headers == [None, None]


def test_a_users_own_client_keeps_httpx_cookie_handling() -> None:
    _SetsCookies.seen_cookie_headers = []
    with serving(_SetsCookies) as base_url, httpx.Client() as own:
        model = mm.model("openai:gpt-4o-mini", base_url=base_url, api_key="sk-test", max_retries=0, http_client=own)
        assert model.chat("hello").text == "hi"
        assert own.cookies.get("affinity") == "abc"  # httpx collected it, as it always has
        assert model.chat("again").text == "hi"
    # Requests modelmix builds never carried a client's cookies, before or after this change.
    assert _SetsCookies.seen_cookie_headers == [None, None]
