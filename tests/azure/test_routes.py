"""Route and URL building for every route form, and what goes on the wire for each (headers, body)."""

from __future__ import annotations

import json

import httpx
import pytest

import modelmix as mm
from modelmix.providers._azure_routes import CLASSIC_API_VERSION, resolve_route
from modelmix.providers.azure import AzureModel

KEY = "route-test-key-1234567890"


@pytest.mark.parametrize(
    ("endpoint", "deployment", "options", "route", "chat_url"),
    [
        # v1: the default for a resource endpoint, on both resource host names, with or without the path.
        (
            "https://contoso.openai.azure.com",
            "gpt-4o-mini",
            {},
            "v1",
            "https://contoso.openai.azure.com/openai/v1/chat/completions",
        ),
        (
            "https://contoso.services.ai.azure.com/",
            "Phi-4-mini-instruct",
            {},
            "v1",
            "https://contoso.services.ai.azure.com/openai/v1/chat/completions",
        ),
        (
            "https://contoso.openai.azure.com/openai/v1/",
            "gpt-4o",
            {},
            "v1",
            "https://contoso.openai.azure.com/openai/v1/chat/completions",
        ),
        (
            "https://contoso.openai.azure.com/openai",
            "gpt-4o",
            {},
            "v1",
            "https://contoso.openai.azure.com/openai/v1/chat/completions",
        ),
        (
            "https://contoso.openai.azure.com",
            "gpt-4o",
            {"api_version": "preview"},
            "v1",
            "https://contoso.openai.azure.com/openai/v1/chat/completions?api-version=preview",
        ),
        # classic deployments route: forced, or recognised from a full deployment URL.
        (
            "https://contoso.openai.azure.com",
            "gpt-4o",
            {"route": "deployments"},
            "deployments",
            f"https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version={CLASSIC_API_VERSION}",
        ),
        (
            "https://contoso.openai.azure.com",
            "gpt-4o",
            {"route": "deployments", "api_version": "2024-12-01-preview"},
            "deployments",
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-12-01-preview",
        ),
        (
            "https://contoso.openai.azure.com//openai/deployments/gpt-4o/chat/completions?api-version=2024-02-01",
            "gpt-4o",
            {},
            "deployments",
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-02-01",
        ),
        (
            "https://contoso.openai.azure.com",
            "my deployment",
            {"route": "deployments"},
            "deployments",
            f"https://contoso.openai.azure.com/openai/deployments/my%20deployment/chat/completions?api-version={CLASSIC_API_VERSION}",
        ),
        # the Model Inference API: a Foundry /models endpoint or a serverless *.models.ai.azure.com one.
        (
            "https://contoso.services.ai.azure.com/models",
            "Mistral-Large-2411",
            {},
            "model-inference",
            "https://contoso.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
        ),
        (
            "https://Phi-3-mini-xyz.eastus2.models.ai.azure.com",
            "Phi-3-mini-4k-instruct",
            {},
            "model-inference",
            "https://phi-3-mini-xyz.eastus2.models.ai.azure.com/chat/completions?api-version=2024-05-01-preview",
        ),
        # old OpenAI-compatible serverless endpoints.
        (
            "https://llama-2-7b-abc.eastus2.inference.ai.azure.com/v1",
            "Llama-2-7b-chat",
            {},
            "serverless-v1",
            "https://llama-2-7b-abc.eastus2.inference.ai.azure.com/v1/chat/completions",
        ),
        (
            "https://llama-2-7b-abc.eastus2.inference.ai.azure.com",
            "Llama-2-7b-chat",
            {},
            "serverless-v1",
            "https://llama-2-7b-abc.eastus2.inference.ai.azure.com/v1/chat/completions",
        ),
        # behind a gateway (APIM, a private host): the path decides, the default is v1.
        (
            "https://gateway.example.com/team-a",
            "gpt-4o",
            {},
            "v1",
            "https://gateway.example.com/team-a/openai/v1/chat/completions",
        ),
    ],
)
def test_route_and_url(endpoint: str, deployment: str, options: dict[str, str], route: str, chat_url: str) -> None:
    resolved = resolve_route(endpoint, deployment, **options)  # type: ignore[arg-type]
    assert resolved.name == route
    assert resolved.chat_url == chat_url


def test_the_model_sends_to_the_resolved_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with AzureModel(
        "gpt-4o", endpoint="https://contoso.openai.azure.com", route="deployments", api_key=KEY, http_client=client
    ) as model:
        assert model.chat("hi").text == "ok"
    assert str(seen[0].url) == (
        f"https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version={CLASSIC_API_VERSION}"
    )


def test_classic_api_version_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2025-01-01-preview")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://contoso.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    classic = AzureModel("gpt-4o", route="deployments")
    assert classic.route.query == {"api-version": "2025-01-01-preview"}
    # The environment's version is for the classic route only: v1 needs none.
    assert AzureModel("gpt-4o").route.query == {}
    # An explicit argument wins over the environment.
    assert AzureModel("gpt-4o", route="deployments", api_version="2024-10-21").route.query == {
        "api-version": "2024-10-21"
    }


def _capture(model_kwargs: dict[str, object], messages: mm.MessagesInput = "hi") -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    with AzureModel(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **model_kwargs) as model:  # type: ignore[arg-type]
        model.chat(messages)
    return seen[0]


@pytest.mark.parametrize(
    ("endpoint", "api_key_header", "bearer", "extra_parameters", "model_in_body"),
    [
        ("https://contoso.openai.azure.com", True, False, False, True),
        ("https://contoso.services.ai.azure.com/models", True, True, True, True),
        ("https://phi.eastus2.models.ai.azure.com", True, True, True, False),
        ("https://llama.eastus2.inference.ai.azure.com/v1", False, True, False, False),
    ],
)
def test_key_headers_and_body_per_route(
    endpoint: str, api_key_header: bool, bearer: bool, extra_parameters: bool, model_in_body: bool
) -> None:
    request = _capture({"deployment": "Phi-4-mini-instruct", "endpoint": endpoint, "api_key": KEY})
    assert (request.headers.get("api-key") == KEY) is api_key_header
    assert (request.headers.get("authorization") == f"Bearer {KEY}") is bearer
    assert (request.headers.get("extra-parameters") == "pass-through") is extra_parameters
    body = json.loads(request.content)
    assert ("model" in body) is model_in_body
    if model_in_body:
        assert body["model"] == "Phi-4-mini-instruct"  # the deployment name


def test_endpoint_and_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://from-env.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-key-0123456789")
    request = _capture({"deployment": "gpt-4o"})
    assert request.url.host == "from-env.openai.azure.com"
    assert request.headers["api-key"] == "env-key-0123456789"
    # Arguments come first.
    request = _capture({"deployment": "gpt-4o", "endpoint": "https://arg.openai.azure.com", "api_key": KEY})
    assert request.url.host == "arg.openai.azure.com"
    assert request.headers["api-key"] == KEY


def test_registry_prefix() -> None:
    model = mm.model("azure:gpt-4o-mini", endpoint="https://contoso.openai.azure.com", api_key=KEY, max_retries=0)
    assert isinstance(model, AzureModel)
    assert (model.provider, model.name) == ("azure", "gpt-4o-mini")
    wrapped = mm.model("azure:gpt-4o-mini", endpoint="https://contoso.openai.azure.com", api_key=KEY)
    assert (wrapped.provider, wrapped.name) == ("azure", "gpt-4o-mini")  # retrying by default, same identity


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"deployment": "gpt-4o", "api_key": KEY}, "AZURE_OPENAI_ENDPOINT"),
        ({"deployment": "gpt-4o", "endpoint": "https://x.openai.azure.com"}, "AZURE_OPENAI_API_KEY"),
        ({"deployment": "gpt-4o", "endpoint": "ftp://x.openai.azure.com", "api_key": KEY}, "https://"),
        ({"deployment": "", "endpoint": "https://x.openai.azure.com", "api_key": KEY}, "deployment name"),
        (
            {"deployment": "gpt-4o", "endpoint": "https://x.openai.azure.com", "api_key": KEY, "route": "classic"},
            "unknown Azure route",
        ),
        (
            {"deployment": "gpt-4o", "endpoint": "https://x.openai.azure.com/openai/deployments/other", "api_key": KEY},
            "names deployment 'other'",
        ),
        (
            {"deployment": "gpt-4o", "endpoint": "https://x.openai.azure.com", "api_key": KEY, "profile": "nope"},
            "unknown Azure profile",
        ),
        (
            {
                "deployment": "gpt-4o",
                "endpoint": "https://x.openai.azure.com",
                "api_key": KEY,
                "token_provider": lambda: "t",
            },
            "not both",
        ),
    ],
)
def test_configuration_errors_say_what_to_do(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=fragment.replace("(", r"\(")):
        AzureModel(**kwargs)  # type: ignore[arg-type]
