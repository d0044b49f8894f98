"""``databricks:``: serving endpoints on a workspace, with a personal access token or OAuth
machine-to-machine credentials, against a local stub of the workspace (chat, listing and the
``/oidc/v1/token`` endpoint)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import modelmix as mm
from modelmix._http import HTTPModel
from modelmix.providers._token_auth import CachedTokenAuth
from modelmix.providers.databricks import DatabricksProvider, oauth_token_provider

from ._cloud_stub import CloudStub, Route, Seen, chat_route, cloud_stub
from ._helpers import CANARY_KEY, Driver

CHAT = "/serving-endpoints/chat/completions"
TOKEN = "/oidc/v1/token"
SECRET = "Zq8vN3xL0pT7wR2yK5mB9cF4hJ6dS1gA"


@pytest.fixture(autouse=True)
def no_databricks_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


class Workspace:
    """Issues tokens tok-1, tok-2... and accepts only the newest one (or the PAT)."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.issued: list[str] = []
        self.expires_in = expires_in
        self.revoked: set[str] = set()

    def token(self, seen: Seen) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"sp-client:{SECRET}".encode()).decode()
        if seen.headers.get("Authorization") != expected:
            return 401, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
        self.issued.append(f"tok-{len(self.issued) + 1}")
        return 200, {"access_token": self.issued[-1], "token_type": "Bearer", "expires_in": self.expires_in}

    def chat(self, seen: Seen) -> tuple[int, Any]:
        given = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        if given != CANARY_KEY and (not self.issued or given != self.issued[-1] or given in self.revoked):
            return 401, {"error_code": "401", "message": "Credential was not sent or was of an unsupported type"}
        return chat_route(seen)

    def endpoints(self, seen: Seen) -> tuple[int, Any]:
        return 200, {
            "endpoints": [
                {
                    "name": "databricks-meta-llama-3-3-70b-instruct",
                    "creator": "someone@example.com",
                    "creation_timestamp": 1730000000000,
                    "task": "llm/v1/chat",
                    "state": {"ready": "READY"},
                }
            ]
        }


@pytest.fixture
def workspace() -> Iterator[tuple[Workspace, CloudStub]]:
    state = Workspace()
    routes: dict[tuple[str, str], Route] = {
        ("POST", CHAT): state.chat,
        ("POST", TOKEN): state.token,
        ("GET", "/api/2.0/serving-endpoints"): state.endpoints,
    }
    with cloud_stub(routes) as stub:
        yield state, stub


def _model(stub: CloudStub, **options: Any) -> HTTPModel:
    model = mm.model("databricks:my-endpoint", base_url=stub.url, max_retries=0, **options)
    assert isinstance(model, HTTPModel)
    return model


async def test_a_personal_access_token_reaches_the_serving_endpoint(
    driver: Driver, workspace: tuple[Workspace, CloudStub], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, stub = workspace
    monkeypatch.setenv("DATABRICKS_TOKEN", CANARY_KEY)
    model = _model(stub)
    try:
        response = await driver.chat(model, "hi")
        _, streamed = await driver.events(model, "hi")
    finally:
        await model.aclose()
    assert response.provider == "databricks"
    assert streamed.text == "Hello"
    calls = stub.calls(CHAT)
    assert len(calls) == 2
    assert calls[0].headers["Authorization"] == f"Bearer {CANARY_KEY}"
    assert calls[0].json()["model"] == "my-endpoint"  # the endpoint name is the model
    assert not stub.calls(TOKEN)


async def test_oauth_m2m_fetches_one_token_and_reuses_it(
    driver: Driver, workspace: tuple[Workspace, CloudStub]
) -> None:
    state, stub = workspace
    model = _model(stub, client_id="sp-client", client_secret=SECRET)
    try:
        for _ in range(3):
            assert (await driver.chat(model, "hi")).text == "Hello from the stub."
    finally:
        await model.aclose()
    token_calls = stub.calls(TOKEN)
    assert len(token_calls) == 1
    assert token_calls[0].form() == {"grant_type": ["client_credentials"], "scope": ["all-apis"]}
    assert {call.headers["Authorization"] for call in stub.calls(CHAT)} == {"Bearer tok-1"}
    assert state.issued == ["tok-1"]


def test_oauth_from_the_environment(workspace: tuple[Workspace, CloudStub], monkeypatch: pytest.MonkeyPatch) -> None:
    _, stub = workspace
    monkeypatch.setenv("DATABRICKS_HOST", stub.url)
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", "sp-client")
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", SECRET)
    with mm.model("databricks:my-endpoint", max_retries=0) as model:
        assert model.chat("hi").text == "Hello from the stub."
    assert stub.calls(CHAT)[0].headers["Authorization"] == "Bearer tok-1"
    assert SECRET not in repr(model)


def test_a_revoked_token_is_replaced_once_after_a_401(workspace: tuple[Workspace, CloudStub]) -> None:
    state, stub = workspace
    with _model(stub, client_id="sp-client", client_secret=SECRET) as model:
        model.chat("hi")
        state.revoked.add("tok-1")
        assert model.chat("hi").text == "Hello from the stub."
    assert state.issued == ["tok-1", "tok-2"]
    assert [call.headers["Authorization"] for call in stub.calls(CHAT)] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_a_token_is_refreshed_before_it_expires(workspace: tuple[Workspace, CloudStub]) -> None:
    state, stub = workspace
    provider = DatabricksProvider(base_url=stub.url, client_id="sp-client", client_secret=SECRET)
    assert isinstance(provider.auth, CachedTokenAuth)
    # The provider's own token function, under a clock the test moves (the real one is time.time;
    # the token's expiry is stamped with real time, so the fake clock starts there).
    fetch = oauth_token_provider(httpx.URL(f"{stub.url}{TOKEN}"), "sp-client", SecretStr(SECRET), provider.sync_client)
    now = [time.time()]
    clocked = CachedTokenAuth(fetch, source="test", provider_name="databricks", hint="", clock=lambda: now[0])
    try:
        assert clocked.headers()["Authorization"] == "Bearer tok-1"
        now[0] += 60  # well inside the hour the token lives
        assert clocked.headers()["Authorization"] == "Bearer tok-1"
        now[0] += 3600 - 60 - 200  # inside the five-minute margin before expiry
        assert clocked.headers()["Authorization"] == "Bearer tok-2"
    finally:
        provider.close()
    assert state.issued == ["tok-1", "tok-2"]
    assert clocked.refreshes == 2


def test_a_refused_client_secret_is_an_authentication_error_without_the_secret(
    workspace: tuple[Workspace, CloudStub],
) -> None:
    _, stub = workspace
    with (
        _model(stub, client_id="sp-client", client_secret="wrong-" + SECRET) as model,
        pytest.raises(mm.AuthenticationError) as info,
    ):
        model.chat("hi")
    error = info.value
    assert error.provider == "databricks"
    assert "bad secret" in error.message  # the server's words, minus the secret it echoed
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert not stub.calls(CHAT)


def test_half_the_oauth_credentials_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="client_secret"):
        mm.model("databricks:x", base_url="https://adb-1.azuredatabricks.net", client_id="sp-client")


def test_no_credentials_names_every_way_to_give_one() -> None:
    with pytest.raises(mm.ConfigurationError, match="DATABRICKS_TOKEN") as info:
        mm.model("databricks:x", base_url="https://adb-1.azuredatabricks.net")
    assert "client_id=" in str(info.value)


def test_the_workspace_host_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "adb-1234567890.12.azuredatabricks.net")
    model = mm.model("databricks:databricks-claude-sonnet-4", api_key=CANARY_KEY, max_retries=0)
    assert isinstance(model, HTTPModel)
    assert str(model.base_url) == "https://adb-1234567890.12.azuredatabricks.net/serving-endpoints/"


def test_no_workspace_names_the_variable() -> None:
    with pytest.raises(mm.ConfigurationError, match="DATABRICKS_HOST"):
        mm.model("databricks:x", api_key=CANARY_KEY)


def test_listing_the_serving_endpoints(workspace: tuple[Workspace, CloudStub]) -> None:
    _, stub = workspace
    models = mm.list_models("databricks", base_url=stub.url, api_key=CANARY_KEY)
    assert [m.spec for m in models] == ["databricks:databricks-meta-llama-3-3-70b-instruct"]
    assert models[0].created == 1730000000
    assert models[0].details["task"] == "llm/v1/chat"
    assert stub.calls("/api/2.0/serving-endpoints")[0].headers["Authorization"] == f"Bearer {CANARY_KEY}"


def test_a_databricks_error_code_is_kept(workspace: tuple[Workspace, CloudStub]) -> None:
    _, stub = workspace
    with _model(stub, api_key="not-the-token") as model, pytest.raises(mm.AuthenticationError) as info:
        model.chat("hi")
    assert info.value.code == "401"
    assert info.value.message == "Credential was not sent or was of an unsupported type"


async def test_async_listing_with_oauth(workspace: tuple[Workspace, CloudStub]) -> None:
    state, stub = workspace
    models = await mm.alist_models("databricks", base_url=stub.url, client_id="sp-client", client_secret=SECRET)
    assert [m.id for m in models] == ["databricks-meta-llama-3-3-70b-instruct"]
    assert stub.calls("/api/2.0/serving-endpoints")[0].headers["Authorization"] == "Bearer tok-1"
    assert state.issued == ["tok-1"]


REASONING_ANSWER = {
    "model": "databricks-claude-sonnet-4",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Rayleigh.", "signature": "x"}]},
                    {"type": "text", "text": "Scattering of short wavelengths."},
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
}


def _reasoning_stream(seen: Seen) -> tuple[int, Any]:
    if not seen.json().get("stream"):
        return 200, REASONING_ANSWER
    deltas = [
        {"role": "assistant", "content": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "Ray"}]}]},
        {"content": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "leigh."}]}]},
        {"content": [{"type": "text", "text": "Scattering."}]},
        {"content": "!"},
    ]
    chunks = [{"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks.append({"model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return 200, "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


async def test_reasoning_models_content_parts_become_text_and_reasoning(driver: Driver) -> None:
    # Databricks' Claude with thinking answers with content parts: a reasoning summary, then text.
    with cloud_stub({("POST", CHAT): _reasoning_stream}) as stub:
        model = _model(stub, api_key=CANARY_KEY)
        try:
            response = await driver.chat(model, "Why is the sky blue?")
            events, streamed = await driver.events(model, "Why is the sky blue?")
        finally:
            await model.aclose()
    assert response.text == "Scattering of short wavelengths."
    assert response.reasoning == "Rayleigh."
    assert streamed.text == "Scattering.!"
    assert streamed.reasoning == "Rayleigh."
    assert [e.text for e in events if isinstance(e, mm.ReasoningDelta)] == ["Ray", "leigh."]
