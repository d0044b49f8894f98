"""One provider table: a registered `Provider` — by `register_provider` or by entry point — builds
models, lists them and shows up in ``modelmix models``, like the built-in ones."""

from __future__ import annotations

import importlib.metadata
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix import _registry
from modelmix._http import HTTPModel
from modelmix.cli._models import print_models
from modelmix.providers import Provider, list_providers
from modelmix.testing import FakeOpenAIServer


class AcmeProvider(Provider):
    name = "acme"
    label = "Acme"
    base_url_env = "ACME_BASE_URL"
    api_key_env = "ACME_API_KEY"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(_registry._registered)
    state = dict(_registry._state)
    yield
    _registry._registered.clear()
    _registry._registered.update(saved)
    _registry._state.update(state)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply="Acme says hi", model="acme-1") as running:
        yield running


def test_a_registered_provider_builds_lists_and_is_probed(
    clean_registry: None, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mm.register_provider("acme", AcmeProvider)
    monkeypatch.setenv("ACME_BASE_URL", server.base_url)
    model = mm.model("acme:acme-1", max_retries=0)
    assert isinstance(model, HTTPModel)
    assert (model.provider, model.name, model.backend.name) == ("acme", "acme-1", "acme")
    assert model.chat("hi").text == "Acme says hi"
    model.close()
    assert [m.spec for m in mm.list_models("acme")] == ["acme:acme-1"]
    assert "acme" in list_providers()
    out = io.StringIO()
    print_models(out)
    line = next(row for row in out.getvalue().splitlines() if row.startswith("acme "))
    assert "reachable" in line
    assert server.base_url in line
    assert "acme:acme-1" in out.getvalue()


async def test_async_listing_of_a_registered_provider(clean_registry: None, server: FakeOpenAIServer) -> None:
    mm.register_provider("acme", AcmeProvider)
    assert [m.id for m in await mm.alist_models("acme", base_url=server.base_url)] == ["acme-1"]


def test_an_entry_point_provider_shows_up_everywhere(
    clean_registry: None, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = importlib.metadata.EntryPoint(
        name="acme", value="tests.core.test_providers:AcmeProvider", group=_registry.ENTRY_POINT_GROUP
    )

    def entry_points(**selection: Any) -> list[importlib.metadata.EntryPoint]:
        return [point] if selection.get("group") == _registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    _registry._state["entry_points_loaded"] = False
    monkeypatch.setenv("ACME_BASE_URL", server.base_url)
    assert "acme" in mm.list_providers()
    assert [m.spec for m in mm.list_models("acme")] == ["acme:acme-1"]
    out = io.StringIO()
    print_models(out)
    assert "acme:acme-1" in out.getvalue()


def test_a_plain_factory_still_builds_models_but_cannot_list(clean_registry: None) -> None:
    def create(name: str, **options: Any) -> mm.Model:
        return AcmeProvider.create_model(name, base_url="http://127.0.0.1:9/v1", **options)

    mm.register_provider("plain", create)
    assert mm.model("plain:x", max_retries=0).name == "x"
    with pytest.raises(mm.ConfigurationError, match="listing models is not supported"):
        mm.list_models("plain")


def test_connection_options_go_to_the_provider_and_the_rest_to_the_model() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": []}))
    client = httpx.Client(transport=transport)
    model = AcmeProvider.create_model(
        "m", base_url="http://127.0.0.1:9/v1", http_client=client, settings={"temperature": 0.1}, context_window=99
    )
    assert isinstance(model, HTTPModel)
    assert model.backend.sync_client() is client
    assert (model.settings, model.context_window) == ({"temperature": 0.1}, 99)
    assert model.backend.list_models() == []
    model.close()
    assert not client.is_closed, "a client the user passed in stays open"
    client.close()


def test_max_retries_on_a_model_class_says_where_it_belongs() -> None:
    """It used to answer "unknown option 'max_retries'. Did you mean 'max_retries'?"."""
    from modelmix.providers.openai import OpenAIModel

    with pytest.raises(mm.ConfigurationError, match=r"mm.model\(\.\.\.\).*mm.retrying\(model, max_retries") as info:
        OpenAIModel("gpt-4o", api_key="sk-test", max_retries=0)  # type: ignore[call-arg]
    assert "Did you mean" not in str(info.value)
