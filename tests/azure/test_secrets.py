"""The API key and the bearer token never show up in logs, reprs, exceptions (with their chains)
or recorded cassettes."""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers.azure import AzureModel

from ._stub import KEY as STUB_KEY
from ._stub import TOKEN_PREFIX

KEY = "sk-azure-SECRET-key-4f9d2c7e1b"
TOKEN = "eyJ0eXAiOiJKV1Q.SECRET-bearer-token.8d3f"
CASSETTES = Path(__file__).parent / "cassettes"


def _echoing_server(status: int) -> httpx.MockTransport:
    """A server that (badly) echoes the credential it received in its error message."""

    def handler(request: httpx.Request) -> httpx.Response:
        got = request.headers.get("api-key") or request.headers.get("authorization", "")
        if status >= 400:
            return httpx.Response(status, json={"error": {"code": str(status), "message": f"bad credential {got}"}})
        if b'"stream":true' in request.content:
            sse = b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
            return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    return httpx.MockTransport(handler)


def _models(status: int) -> list[AzureModel]:
    transport = _echoing_server(status)
    common: dict[str, Any] = {
        "http_client": httpx.Client(transport=transport),
        "async_http_client": httpx.AsyncClient(transport=transport),
    }
    return [
        AzureModel("gpt-4o", endpoint="https://contoso.openai.azure.com", api_key=KEY, **common),
        AzureModel(
            "Phi-4-mini-instruct",
            endpoint="https://contoso.services.ai.azure.com/models",
            token_provider=lambda: (TOKEN, time.time() + 3600),
            **common,
        ),
    ]


def _everything_about(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), repr(exc), str(exc)]
    cursor: BaseException | None = exc
    while cursor is not None:
        parts += [repr(cursor.args), repr(vars(cursor))]
        cursor = cursor.__cause__ or cursor.__context__
    return "\n".join(parts)


def _assert_clean(text: str) -> None:
    assert KEY not in text
    assert TOKEN not in text
    assert "SECRET" not in text


def test_no_secret_in_logs_reprs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "modelmix", "modelmix.azure"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    for model in _models(200):
        seen += [repr(model), str(model), repr(model.auth), repr(model.route), repr(model.codec.__dict__)]
        response = model.chat("hi")
        seen += [repr(response), response.model_dump_json()]
        with model.stream("hi") as stream:
            stream.until_done()
        seen.append(repr(stream))
        model.close()
    for model in _models(401):
        with pytest.raises(mm.AuthenticationError) as caught:
            model.chat("hi")
        seen.append(_everything_about(caught.value))
        assert "bad credential" in caught.value.message  # the message is kept, the secret is not
        with pytest.raises(mm.AuthenticationError) as caught_stream, model.stream("hi") as stream:
            stream.until_done()
        seen.append(_everything_about(caught_stream.value))
        model.close()
    seen.append(caplog.text)
    seen += [repr(record.args) for record in caplog.records]
    assert any("azure:" in record.getMessage() for record in caplog.records)  # logging did happen
    _assert_clean("\n".join(seen))


async def test_no_secret_in_async_paths(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for model in _models(401):
        with pytest.raises(mm.AuthenticationError) as caught:
            await model.achat("hi")
        seen.append(_everything_about(caught.value))
        await model.aclose()
    seen.append(caplog.text)
    _assert_clean("\n".join(seen))


def test_token_provider_failure_does_not_leak_the_old_token() -> None:
    state = {"n": 0}

    def provider() -> tuple[str, float]:
        state["n"] += 1
        if state["n"] > 1:
            raise RuntimeError("Entra is down")
        return TOKEN, 0.0  # already expired: the next call must refresh

    model = AzureModel("gpt-4o", endpoint="https://contoso.openai.azure.com", token_provider=provider)
    model.auth.headers()
    with pytest.raises(mm.ProviderError) as caught:
        model.auth.headers()
    _assert_clean(_everything_about(caught.value) + repr(model) + repr(model.auth))


def test_recorded_cassettes_hold_no_credentials() -> None:
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert len(files) >= 20, "the recorded-route cassettes are missing"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert STUB_KEY not in text, path
        assert TOKEN_PREFIX not in text, path
        assert "api-key" not in text.lower(), path
        assert "authorization" not in text.lower(), path
