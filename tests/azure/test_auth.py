"""Entra ID tokens: caching, refresh before expiry (injected clock), shared refreshes, the single
retry after a 401, credential adapters and the optional azure-identity dependency."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import modelmix as mm
from modelmix.providers._azure_auth import DEFAULT_SCOPE, BearerToken, EntraTokenAuth
from modelmix.providers.azure import AzureModel

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Tokens:
    """A sync token provider issuing token-1, token-2, … each valid for `ttl` seconds."""

    def __init__(self, clock: Clock, ttl: float = 3600.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.calls = 0

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        return f"token-{self.calls}", self.clock() + self.ttl


def test_token_is_cached_and_refreshed_before_expiry() -> None:
    clock = Clock()
    tokens = Tokens(clock)
    auth = EntraTokenAuth(tokens, clock=clock, refresh_margin=300)
    assert auth.headers() == {"Authorization": "Bearer token-1"}
    clock.now = T0 + 3299  # 301 s before expiry: still outside the margin
    assert auth.headers()["Authorization"] == "Bearer token-1"
    assert tokens.calls == 1
    clock.now = T0 + 3300  # inside the 300 s margin: refreshed although not yet expired
    assert auth.headers()["Authorization"] == "Bearer token-2"
    assert tokens.calls == 2


def test_bare_string_tokens_are_reused_for_the_ttl() -> None:
    clock = Clock()
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return f"plain-{len(calls)}"

    auth = EntraTokenAuth(provider, clock=clock, token_ttl=300)
    assert auth.headers()["Authorization"] == "Bearer plain-1"
    clock.now = T0 + 299
    assert auth.headers()["Authorization"] == "Bearer plain-1"
    clock.now = T0 + 300
    assert auth.headers()["Authorization"] == "Bearer plain-2"


def test_short_lived_token_is_used_rather_than_refreshed_forever() -> None:
    clock = Clock()
    tokens = Tokens(clock, ttl=60)  # shorter than the 300 s margin
    auth = EntraTokenAuth(tokens, clock=clock)
    auth.headers()
    auth.headers()
    assert tokens.calls == 1
    clock.now = T0 + 1
    auth.headers()
    assert tokens.calls == 2


@pytest.mark.parametrize(
    "result",
    [
        "tok",
        ("tok", T0 + 10),
        {"token": "tok", "expires_on": T0 + 10},
        BearerToken("tok", T0 + 10),
        types.SimpleNamespace(token="tok", expires_on=int(T0 + 10)),  # azure.core AccessToken shape
    ],
)
def test_provider_result_forms(result: Any) -> None:
    auth = EntraTokenAuth(lambda: result, clock=Clock())
    assert auth.headers() == {"Authorization": "Bearer tok"}


@pytest.mark.parametrize("result", [42, "", ("", 1.0)])
def test_bad_provider_results_are_configuration_errors(result: Any) -> None:
    auth = EntraTokenAuth(lambda: result, clock=Clock())
    with pytest.raises(mm.ConfigurationError, match="token"):
        auth.headers()


def test_concurrent_threads_share_one_refresh() -> None:
    clock = Clock()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_provider() -> tuple[str, float]:
        calls.append(1)
        started.set()
        release.wait(10)
        return "shared", clock() + 3600

    auth = EntraTokenAuth(slow_provider, clock=clock)
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(auth.headers()["Authorization"]))
    first.start()
    assert started.wait(10)
    # These start while the first refresh is in flight: they must wait for it, not start their own.
    others = [threading.Thread(target=lambda: results.append(auth.headers()["Authorization"])) for _ in range(7)]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert results == ["Bearer shared"] * 8
    assert len(calls) == 1


async def test_concurrent_tasks_share_one_async_refresh() -> None:
    clock = Clock()
    release = anyio.Event()
    calls: list[int] = []

    async def provider() -> tuple[str, float]:
        calls.append(1)
        await release.wait()
        return "async-shared", clock() + 3600

    auth = EntraTokenAuth(provider, clock=clock)
    results: list[str] = []

    async def call() -> None:
        results.append((await auth.aheaders())["Authorization"])

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(call)
        await anyio.wait_all_tasks_blocked()  # all ten are waiting: one in the provider, nine on the lock
        release.set()
    assert results == ["Bearer async-shared"] * 10
    assert len(calls) == 1


async def test_sync_provider_serves_async_calls() -> None:
    clock = Clock()
    tokens = Tokens(clock)
    auth = EntraTokenAuth(tokens, clock=clock)
    assert (await auth.aheaders())["Authorization"] == "Bearer token-1"
    assert (await auth.aheaders())["Authorization"] == "Bearer token-1"
    assert tokens.calls == 1


def test_async_provider_refuses_sync_calls_clearly() -> None:
    async def provider() -> str:
        return "t"

    auth = EntraTokenAuth(provider, clock=Clock())
    with pytest.raises(mm.ConfigurationError, match="achat/astream"):
        auth.headers()


def test_failed_refresh_keeps_an_unexpired_token_and_fails_once_expired() -> None:
    clock = Clock()
    state = {"fail": False, "n": 0}

    def provider() -> tuple[str, float]:
        if state["fail"]:
            raise RuntimeError("Entra unreachable")
        state["n"] += 1
        return f"token-{state['n']}", clock() + 3600

    auth = EntraTokenAuth(provider, clock=clock)
    auth.headers()
    state["fail"] = True
    clock.now = T0 + 3400  # inside the margin, not expired: keep using token-1
    assert auth.headers()["Authorization"] == "Bearer token-1"
    clock.now = T0 + 3600  # expired: the failure surfaces, typed, with its cause chained
    with pytest.raises(mm.ProviderError, match="token provider failed") as caught:
        auth.headers()
    assert caught.value.code == "token_provider_failed"
    assert isinstance(caught.value.__cause__, RuntimeError)


# ----------------------------------------------------------------------------- 401 → one retry


def _expiring_server(valid: set[str], seen: list[str]) -> httpx.MockTransport:
    """Accepts only bearer tokens in `valid`; answers SSE for stream requests."""

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        seen.append(token)
        if token not in valid:
            return httpx.Response(401, json={"error": {"code": "401", "message": "Token expired or invalid"}})
        if b'"stream":true' in request.content:
            sse = (
                'data: {"choices":[],"model":"","prompt_filter_results":[]}\n\n'
                'data: {"choices":[{"index":0,"delta":{"content":"fresh"},"finish_reason":"stop"}],"model":"m"}\n\n'
                "data: [DONE]\n\n"
            )
            return httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "fresh"}}]})

    return httpx.MockTransport(handler)


def _token_model(transport: httpx.MockTransport, provider: Callable[[], Any]) -> AzureModel:
    return AzureModel(
        "gpt-4o",
        endpoint="https://contoso.openai.azure.com",
        token_provider=provider,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


@pytest.mark.parametrize("how", ["chat", "stream"])
def test_401_with_token_provider_retries_once_with_a_fresh_token(how: str) -> None:
    clock = Clock()
    seen: list[str] = []
    # token-1 was revoked server-side although its expiry is an hour away.
    with _token_model(_expiring_server({"token-2"}, seen), Tokens(clock)) as model:
        if how == "chat":
            assert model.chat("hi").text == "fresh"
        else:
            with model.stream("hi") as stream:
                assert "".join(stream.text_deltas()) == "fresh"
    assert seen == ["token-1", "token-2"]


@pytest.mark.parametrize("how", ["achat", "astream"])
async def test_401_async_retries_once_with_a_fresh_token(how: str) -> None:
    clock = Clock()
    seen: list[str] = []
    async with _token_model(_expiring_server({"token-2"}, seen), Tokens(clock)) as model:
        if how == "achat":
            assert (await model.achat("hi")).text == "fresh"
        else:
            async with model.astream("hi") as stream:
                assert "".join([d async for d in stream.text_deltas()]) == "fresh"
    assert seen == ["token-1", "token-2"]


def test_a_second_401_is_raised_after_exactly_one_retry() -> None:
    clock = Clock()
    seen: list[str] = []
    tokens = Tokens(clock)
    with _token_model(_expiring_server(set(), seen), tokens) as model, pytest.raises(mm.AuthenticationError):
        model.chat("hi")
    assert seen == ["token-1", "token-2"]
    assert tokens.calls == 2


def test_401_with_an_api_key_is_not_retried() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["api-key"])
        return httpx.Response(401, json={"error": {"code": "401", "message": "Access denied"}})

    with (
        AzureModel(
            "gpt-4o",
            endpoint="https://contoso.openai.azure.com",
            api_key="wrong-key-000000000000",
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        ) as model,
        pytest.raises(mm.AuthenticationError) as caught,
    ):
        model.chat("hi")
    assert len(seen) == 1
    assert caught.value.key_hint == "…0000"


# ----------------------------------------------------------------------------- credentials


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> Any:
        self.scopes.append(scopes)
        return types.SimpleNamespace(token="cred-token", expires_on=int(T0 + 3600))


class FakeAsyncCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str) -> Any:
        self.scopes.append(scopes)
        return types.SimpleNamespace(token="async-cred-token", expires_on=int(T0 + 3600))


def _seen_auth(model_kwargs: dict[str, Any]) -> list[str]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    with AzureModel(
        "gpt-4o",
        endpoint="https://contoso.openai.azure.com",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=Clock(),
        **model_kwargs,
    ) as model:
        model.chat("hi")
    return seen


def test_sync_credential_uses_the_default_scope() -> None:
    credential = FakeCredential()
    assert _seen_auth({"credential": credential}) == ["Bearer cred-token"]
    assert credential.scopes == [(DEFAULT_SCOPE,)]
    assert DEFAULT_SCOPE == "https://cognitiveservices.azure.com/.default"


def test_scope_is_configurable() -> None:
    credential = FakeCredential()
    _seen_auth({"credential": credential, "scope": "api://my-gateway/.default"})
    assert credential.scopes == [("api://my-gateway/.default",)]


async def test_async_credential() -> None:
    credential = FakeAsyncCredential()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    async with AzureModel(
        "gpt-4o",
        endpoint="https://contoso.openai.azure.com",
        credential=credential,
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        clock=Clock(),
    ) as model:
        await model.achat("hi")
        await model.achat("again")
    assert seen == ["Bearer async-cred-token"] * 2
    assert credential.scopes == [(DEFAULT_SCOPE,)]  # cached: asked once


def test_default_credential_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if azure-identity were not installed
    with pytest.raises(mm.MissingDependencyError, match=r"pip install 'modelmix\[azure\]'"):
        AzureModel("gpt-4o", endpoint="https://contoso.openai.azure.com", credential="default")


def test_default_credential_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("azure.identity")
    fake.DefaultAzureCredential = FakeCredential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", types.ModuleType("azure"))
    monkeypatch.setitem(sys.modules, "azure.identity", fake)
    assert _seen_auth({"credential": "default"}) == ["Bearer cred-token"]


def test_credential_without_get_token_is_rejected() -> None:
    with pytest.raises(mm.ConfigurationError, match="get_token"):
        AzureModel("gpt-4o", endpoint="https://contoso.openai.azure.com", credential=object())


def test_with_the_real_azure_identity_package() -> None:
    """With ``modelmix[azure]`` installed, ``credential="default"`` builds a real
    DefaultAzureCredential (no network until a token is needed) and azure-core's AccessToken is
    accepted as a provider result."""
    pytest.importorskip("azure.identity")
    credentials = pytest.importorskip("azure.core.credentials")
    model = AzureModel("gpt-4o", endpoint="https://contoso.openai.azure.com", credential="default")
    assert isinstance(model.auth, EntraTokenAuth)
    assert model.auth.scope == DEFAULT_SCOPE
    model.close()
    token = credentials.AccessToken("real-shape-token", int(T0 + 3600))
    auth = EntraTokenAuth(lambda: token, clock=Clock())
    assert auth.headers() == {"Authorization": "Bearer real-shape-token"}
