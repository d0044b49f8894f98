"""The "provider:model" registry, credentials and the OpenAI provider's environment variables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import modelmix as mm
from modelmix import _registry
from modelmix._auth import APIKeyAuth, NoAuth, key_hint, resolve_secret
from modelmix._registry import parse_model_string
from modelmix.providers.openai import OpenAIModel

from ._helpers import CANARY_KEY, Driver, completion
from .conftest import MakeModel


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(_registry._registered)
    yield
    _registry._registered.clear()
    _registry._registered.update(saved)


def test_model_string_builds_an_openai_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    model = mm.model("openai:gpt-4o-mini", max_retries=0)
    assert isinstance(model, OpenAIModel)
    assert (model.provider, model.name) == ("openai", "gpt-4o-mini")
    assert str(model.base_url) == "https://api.openai.com/v1/"
    model.close()


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(mm.ConfigurationError, match="OPENAI_API_KEY"):
        mm.model("openai:gpt-4o-mini")
    with pytest.raises(mm.ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o-mini", api_key=SecretStr(""))


def test_model_names_may_contain_colons(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_model_string(" OpenAI : ft:gpt-4o:org:x ") == ("openai", "ft:gpt-4o:org:x")
    assert parse_model_string("local") == ("local", "")
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    assert mm.model("openai:ft:gpt-4o-mini:acme::abc").name == "ft:gpt-4o-mini:acme::abc"


def test_default_model_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("MODELMIX_MODEL", "openai:gpt-4.1-nano")
    assert mm.model().name == "gpt-4.1-nano"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("gpt-4o", "no provider prefix.*'openai:gpt-4o'"),
        ("opneai:gpt-4o", "unknown provider 'opneai'. Did you mean 'openai'\\?"),
        ("zzzzzz:m", "unknown provider 'zzzzzz'. Known providers: "),
    ],
)
def test_bad_model_strings(spec: str, match: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=match):
        mm.model(spec)


def test_model_requires_a_string() -> None:
    with pytest.raises(mm.ConfigurationError, match="takes a string"):
        mm.model(42)  # type: ignore[arg-type]


def test_register_provider(clean_registry: None) -> None:
    built: list[tuple[str, dict[str, Any]]] = []

    def factory(name: str, **options: Any) -> mm.Model:
        built.append((name, options))
        return OpenAIModel(name, api_key=CANARY_KEY)

    mm.register_provider("acme", factory)
    mm.register_provider("acme", factory)  # the same factory again is fine
    assert "acme" in mm.list_providers()
    model = mm.model("acme:large", settings={"temperature": 0})
    assert built == [("large", {"settings": {"temperature": 0}})]
    assert model.name == "large"
    with pytest.raises(mm.ConfigurationError, match="already registered; pass replace=True"):
        mm.register_provider("acme", lambda name, **o: factory(name))
    mm.register_provider("acme", "modelmix.providers.openai:create", replace=True)
    assert mm.model("acme:x", api_key=CANARY_KEY).provider == "openai"


@pytest.mark.parametrize("prefix", ["", "Acme", "a:b", " acme"])
def test_register_provider_rejects_bad_prefixes(prefix: str) -> None:
    with pytest.raises(mm.ConfigurationError, match="must be lower-case"):
        mm.register_provider(prefix, lambda name, **o: OpenAIModel(name, api_key=CANARY_KEY))


def test_string_factories_import_lazily(clean_registry: None) -> None:
    mm.register_provider("lazy", "modelmix.providers.openai")  # no attribute: "create" is used
    assert mm.model("lazy:m", api_key=CANARY_KEY).name == "m"
    assert callable(_registry._registered["lazy"])


async def test_environment_variables_are_honoured(
    driver: Driver, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment-000000")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.internal.test/openai/v1/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    await driver.chat(make_model(handler, api_key=None), "hi")
    request = seen[0]
    assert str(request.url) == "https://proxy.internal.test/openai/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-from-environment-000000"
    assert request.headers["openai-organization"] == "org-env"
    assert request.headers["openai-project"] == "proj-env"


async def test_arguments_win_over_environment(
    driver: Driver, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-environment-000000")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.internal.test/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    model = make_model(handler, base_url="http://127.0.0.1:8000/v1", organization="org-arg", project="p")
    await driver.chat(model, "hi")
    request = seen[0]
    assert str(request.url) == "http://127.0.0.1:8000/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert request.headers["openai-organization"] == "org-arg"
    assert request.headers["openai-project"] == "p"


def test_no_org_headers_without_configuration() -> None:
    model = OpenAIModel("gpt-4o-mini", api_key=CANARY_KEY)
    assert "openai-organization" not in model._base_headers
    assert "openai-project" not in model._base_headers


# ------------------------------------------------------------------------------ auth


def test_resolve_secret_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECOND", "from-second")
    monkeypatch.setenv("FIRST", "")
    assert resolve_secret("explicit", "FIRST", "SECOND") == SecretStr("explicit")
    assert resolve_secret(SecretStr("typed"), "SECOND") == SecretStr("typed")
    assert resolve_secret(None, "FIRST", "SECOND") == SecretStr("from-second")
    assert resolve_secret(None, "UNSET_VARIABLE_X") is None
    assert resolve_secret(SecretStr(""), "SECOND") is None


def test_api_key_auth() -> None:
    auth = APIKeyAuth(SecretStr(CANARY_KEY), header="api-key", prefix="")
    assert auth.headers() == {"api-key": CANARY_KEY}
    assert auth.static is True
    assert auth.invalidate() is False
    assert auth.secrets() == [CANARY_KEY]
    assert repr(auth) == "APIKeyAuth(key='…cdef')"
    with pytest.raises(mm.ConfigurationError, match="the API key is empty"):
        APIKeyAuth(SecretStr("   "))


async def test_no_auth() -> None:
    auth = NoAuth()
    assert auth.headers() == {}
    assert await auth.aheaders() == {}
    assert auth.secrets() == []
    assert repr(auth) == "NoAuth()"


def test_key_hint() -> None:
    assert key_hint(None) is None
    assert key_hint(SecretStr(CANARY_KEY)) == "…cdef"
    assert key_hint(SecretStr("short-key")) == "…", "short keys give nothing away"
