"""A base URL carrying ``user:password@`` is refused: httpx would send Basic auth instead of the
API key and print the password in its INFO request log. The refusal never shows the password."""

from __future__ import annotations

import logging

import httpx
import pytest

import modelmix as mm

SECRET = "hunter2-PASSWORD"


def test_credentials_in_base_url_are_refused_without_echoing_them(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    client = httpx.Client(transport=httpx.MockTransport(server))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(mm.ConfigurationError, match="api_key=") as caught:
        mm.model(
            "openai:gpt-4o-mini",
            api_key="sk-real-key",
            base_url=f"http://alice:{SECRET}@127.0.0.1:9/v1",
            http_client=client,
        ).chat("hi")
    assert "credentials" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert SECRET not in caplog.text
    assert sent == []


@pytest.mark.parametrize(
    ("spec", "variable"),
    [("llamacpp:", "LLAMACPP_BASE_URL"), ("ollama:llama3.2", "OLLAMA_HOST"), ("openai:gpt-4o", "OPENAI_BASE_URL")],
)
def test_credentials_in_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch, spec: str, variable: str) -> None:
    monkeypatch.setenv(variable, f"http://bob:{SECRET}@127.0.0.1:9")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(mm.ConfigurationError, match=variable) as caught:
        mm.model(spec)
    assert SECRET not in str(caught.value)


def test_credentials_in_the_azure_endpoint_are_refused() -> None:
    with pytest.raises(mm.ConfigurationError, match="AZURE_OPENAI_API_KEY") as caught:
        mm.model("azure:gpt-4o-mini", api_key="k", endpoint=f"https://me:{SECRET}@r.openai.azure.com")
    assert SECRET not in str(caught.value)


def test_listing_models_refuses_them_too() -> None:
    with pytest.raises(mm.ConfigurationError) as caught:
        mm.list_models("llamacpp", base_url=f"http://bob:{SECRET}@127.0.0.1:9/v1")
    assert SECRET not in str(caught.value)


def test_an_at_sign_in_the_path_or_query_is_not_a_credential() -> None:
    model = mm.model("openai:gpt-4o-mini", api_key="sk-test", base_url="http://127.0.0.1:9/v1/a@b?x=c@d")
    assert model.endpoint == "http://127.0.0.1:9"
