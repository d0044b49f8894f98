"""Errors say where: a transport error names the URL it tried and how to change it, attempts
tell two servers on one host apart, and a redirect with a malformed Location is the server's
fault — reported as such, never retried as if the network had failed."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.cli import main
from modelmix.testing import FunctionModel

from ._loopback import closed_port, serving

# --------------------------------------------------------------------------- connection errors


def test_a_connection_error_names_the_url_and_how_to_change_it() -> None:
    port = closed_port()
    model = mm.model("llamacpp:x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi")
    error = caught.value
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    assert error.url == url
    assert url in str(error)
    assert "base_url=" in str(error)
    assert "LLAMACPP_BASE_URL" in str(error)
    assert error.host == "127.0.0.1"


async def test_an_async_connection_error_names_the_url_too() -> None:
    port = closed_port()
    model = mm.model("vllm:x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(mm.TransportError) as caught:
        await model.achat("hi")
    assert caught.value.url == f"http://127.0.0.1:{port}/v1/chat/completions"
    assert "VLLM_BASE_URL" in str(caught.value)


def test_the_url_in_an_error_carries_no_credentials_and_no_query() -> None:
    port = closed_port()
    model = mm.model(
        "openai:gpt-x",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-where-0123456789abcdef",
        max_retries=0,
    )
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi")
    assert caught.value.url == f"http://127.0.0.1:{port}/v1/chat/completions"
    assert "0123456789abcdef" not in str(caught.value)


def test_two_members_on_one_host_are_told_apart_in_attempts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    first, second = closed_port(), closed_port()
    chain = mm.fallback(
        mm.model("llamacpp:x", base_url=f"http://127.0.0.1:{first}/v1", max_retries=0),
        mm.model("vllm:x", base_url=f"http://127.0.0.1:{second}/v1", max_retries=0),
    )
    with caplog.at_level(logging.INFO, logger="modelmix"), pytest.raises(mm.AllModelsFailedError) as caught:
        chain.chat("hi")
    hosts = [attempt.host for attempt in caught.value.attempts]
    assert f"127.0.0.1:{first}" in hosts
    assert f"127.0.0.1:{second}" in hosts
    assert f"127.0.0.1:{first}" in caplog.text
    assert f"127.0.0.1:{second}" in caplog.text
    urls = {error.url for error in caught.value.exceptions if isinstance(error, mm.ProviderError)}
    assert urls == {f"http://127.0.0.1:{p}/v1/chat/completions" for p in (first, second)}


def test_the_cli_says_which_address_it_tried_and_which_variable_sets_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("LLAMACPP_BASE_URL", f"http://127.0.0.1:{port}/v1")
    assert main(["chat", "-m", "llamacpp:", "hi"]) == 1
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in err
    assert "LLAMACPP_BASE_URL" in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- malformed redirects


class _BadRedirect(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = 0

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(302)
        self.send_header("location", "http://[::1:not-a-url/v1")
        self.send_header("content-length", "0")
        self.end_headers()


def test_a_malformed_redirect_is_the_servers_fault_and_is_sent_once() -> None:
    _BadRedirect.requests = 0
    with serving(_BadRedirect) as base_url:
        model = mm.model("llamacpp:x", base_url=base_url)  # the default retries are on
        with pytest.raises(mm.UnexpectedRedirectError) as caught:
            model.chat("hi")
    assert _BadRedirect.requests == 1
    error = caught.value
    assert error.retryable is False
    assert "Location" in str(error)
    assert error.url == f"{base_url}/chat/completions"


async def test_a_malformed_redirect_falls_back_without_a_retry_async() -> None:
    healthy = FunctionModel(lambda messages, settings: "from the healthy one")
    _BadRedirect.requests = 0
    with serving(_BadRedirect) as base_url:
        chain = mm.fallback(mm.model("llamacpp:x", base_url=base_url), healthy)
        response = await chain.achat("hi")
    assert response.text == "from the healthy one"
    assert _BadRedirect.requests == 1


def test_an_error_status_names_the_url_too() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503, json={"error": {"message": "busy"}}))
    model = mm.model(
        "llamacpp:x", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=httpx.Client(transport=transport)
    )
    with pytest.raises(mm.ServerError) as caught:
        model.chat("hi")
    assert caught.value.url == "http://127.0.0.1:9/v1/chat/completions"
