"""``vertex:`` (project/location addressing, Google credentials, the optional google-auth extra)
and ``bedrock:`` (region addressing, Bedrock API keys, SigV4 through the optional botocore extra),
against a local stub that checks path, headers and auth."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import modelmix as mm
from modelmix._http import HTTPModel
from modelmix.providers.bedrock import BedrockProvider
from modelmix.providers.google import VertexProvider, vertex_base_url

from ._cloud_stub import CloudStub, chat_route, cloud_stub
from ._helpers import CANARY_KEY, Driver

VARIABLES = (
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "VERTEX_BASE_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_BEARER_TOKEN_BEDROCK",
    "BEDROCK_BASE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No shared AWS config or credentials file from the machine running the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# --------------------------------------------------------------------------------------- vertex

VERTEX_PATH = "/v1/projects/my-project/locations/us-central1/endpoints/openapi"


@pytest.fixture
def vertex_stub() -> Iterator[CloudStub]:
    with cloud_stub({("POST", f"{VERTEX_PATH}/chat/completions"): chat_route}) as stub:
        yield stub


def test_vertex_address_from_project_and_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    model = mm.model("vertex:google/gemini-2.5-flash", api_key=CANARY_KEY, max_retries=0)
    assert isinstance(model, HTTPModel)
    assert str(model.base_url) == f"https://us-central1-aiplatform.googleapis.com{VERTEX_PATH}/"
    assert (
        vertex_base_url("p", "global")
        == "https://aiplatform.googleapis.com/v1/projects/p/locations/global/endpoints/openapi"
    )
    eu = mm.model(
        "vertex:google/gemini-2.5-flash", project="p", location="europe-west4", api_key=CANARY_KEY, max_retries=0
    )
    assert isinstance(eu, HTTPModel)
    assert eu.base_url.host == "europe-west4-aiplatform.googleapis.com"
    assert model.profile.reasoning == "reasoning_effort"


def test_vertex_without_a_project_says_how_to_give_one() -> None:
    with pytest.raises(mm.ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        mm.model("vertex:google/gemini-2.5-flash", api_key=CANARY_KEY)


def test_vertex_without_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if the extra were not installed
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    with pytest.raises(mm.MissingDependencyError) as info:
        mm.model("vertex:google/gemini-2.5-flash")
    assert info.value.extra == "google"
    assert "modelmix[google]" in str(info.value)


async def test_vertex_with_a_token_provider(driver: Driver, vertex_stub: CloudStub) -> None:
    issued: list[str] = []

    def tokens() -> tuple[str, float]:
        issued.append(f"ya29.token-{len(issued) + 1}")
        return issued[-1], datetime.datetime.now().timestamp() + 3600

    model = mm.model(
        "vertex:google/gemini-2.5-flash",
        base_url=f"{vertex_stub.url}{VERTEX_PATH}",
        token_provider=tokens,
        max_retries=0,
    )
    try:
        for _ in range(2):
            assert (await driver.chat(model, "hi")).provider == "vertex"
    finally:
        await model.aclose()
    assert issued == ["ya29.token-1"]
    calls = vertex_stub.calls(f"{VERTEX_PATH}/chat/completions")
    assert [c.headers["Authorization"] for c in calls] == ["Bearer ya29.token-1"] * 2
    assert calls[0].json()["model"] == "google/gemini-2.5-flash"


class FakeGoogleCredentials:
    """The two attributes modelmix reads from a google-auth credentials object that is valid."""

    def __init__(self) -> None:
        self.token = "ya29.from-credentials"
        self.valid = True
        self.expiry = datetime.datetime.utcnow() + datetime.timedelta(hours=1)

    def refresh(self, request: Any) -> None:
        raise AssertionError("a valid credential is not refreshed")


def test_vertex_with_google_credentials(vertex_stub: CloudStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERTEX_BASE_URL", f"{vertex_stub.url}{VERTEX_PATH}")
    model = mm.model("vertex:google/gemini-2.5-flash", credentials=FakeGoogleCredentials(), max_retries=0)
    assert model.chat("hi").text == "Hello from the stub."
    assert vertex_stub.calls(f"{VERTEX_PATH}/chat/completions")[0].headers["Authorization"] == (
        "Bearer ya29.from-credentials"
    )
    assert "ya29" not in repr(model)


def test_vertex_token_failure_is_a_typed_error(vertex_stub: CloudStub) -> None:
    def broken() -> str:
        raise OSError("metadata server unreachable")

    model = mm.model(
        "vertex:google/gemini-2.5-flash",
        base_url=f"{vertex_stub.url}{VERTEX_PATH}",
        token_provider=broken,
        max_retries=0,
    )
    with pytest.raises(mm.ProviderError) as info:
        model.chat("hi")
    assert info.value.provider == "vertex"
    assert info.value.code == "token_provider_failed"
    assert "Google credentials" in info.value.message
    assert not vertex_stub.calls(f"{VERTEX_PATH}/chat/completions")


def test_vertex_cannot_list() -> None:
    assert VertexProvider.listing_path is None


# -------------------------------------------------------------------------------------- bedrock


@pytest.fixture
def bedrock_stub() -> Iterator[CloudStub]:
    with cloud_stub({("POST", "/openai/v1/chat/completions"): chat_route}) as stub:
        yield stub


def test_bedrock_address_from_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", CANARY_KEY)
    model = mm.model("bedrock:openai.gpt-oss-120b-1:0", max_retries=0)
    assert isinstance(model, HTTPModel)
    assert str(model.base_url) == "https://bedrock-runtime.eu-west-1.amazonaws.com/openai/v1/"
    assert model.name == "openai.gpt-oss-120b-1:0"  # the model id keeps its colon
    assert CANARY_KEY not in repr(model)


def test_bedrock_without_a_region_names_it() -> None:
    with pytest.raises(mm.ConfigurationError, match="AWS_REGION"):
        mm.model("bedrock:openai.gpt-oss-20b-1:0", api_key=CANARY_KEY)


async def test_bedrock_api_key_is_a_bearer(
    driver: Driver, bedrock_stub: CloudStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", CANARY_KEY)
    model = mm.model("bedrock:openai.gpt-oss-20b-1:0", base_url=f"{bedrock_stub.url}/openai/v1", max_retries=0)
    try:
        response = await driver.chat(model, "hi")
        _, streamed = await driver.events(model, "hi")
    finally:
        await model.aclose()
    assert response.provider == "bedrock"
    assert streamed.text == "Hello"
    calls = bedrock_stub.calls("/openai/v1/chat/completions")
    assert {c.headers["Authorization"] for c in calls} == {f"Bearer {CANARY_KEY}"}
    assert not any("x-amz-date" in c.headers for c in calls)


@pytest.mark.skipif(importlib.util.find_spec("botocore") is None, reason="botocore is not installed")
async def test_bedrock_signs_with_sigv4_without_a_key(
    driver: Driver, bedrock_stub: CloudStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-example")
    model = mm.model(
        "bedrock:openai.gpt-oss-20b-1:0", region="us-west-2", base_url=f"{bedrock_stub.url}/openai/v1", max_retries=0
    )
    try:
        assert (await driver.chat(model, "hi")).text == "Hello from the stub."
        _, streamed = await driver.events(model, "hi")
    finally:
        await model.aclose()
    assert streamed.text == "Hello"
    for call in bedrock_stub.calls("/openai/v1/chat/completions"):
        authorization = call.headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/us-west-2/bedrock/aws4_request" in authorization
        assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in authorization
        assert call.headers["X-Amz-Security-Token"] == "session-token-example"
        assert "wJalrXUtnFEMI" not in str(call.headers)


@pytest.mark.skipif(importlib.util.find_spec("botocore") is None, reason="botocore is not installed")
def test_bedrock_signature_verifies(bedrock_stub: CloudStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature the server gets is the one botocore computes for the same request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    model = mm.model("bedrock:m", region="us-east-1", base_url=f"{bedrock_stub.url}/openai/v1", max_retries=0)
    model.chat("hi")
    call = bedrock_stub.calls("/openai/v1/chat/completions")[0]
    again = AWSRequest(
        method="POST",
        url=f"{bedrock_stub.url}/openai/v1/chat/completions",
        data=call.body,
        headers={"content-type": call.headers["content-type"], "host": call.headers["host"]},
    )
    again.context["timestamp"] = call.headers["x-amz-date"]
    again.headers["x-amz-date"] = call.headers["x-amz-date"]
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "bedrock", "us-east-1")
    signature = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert call.headers["Authorization"].endswith(f"Signature={signature}")


def test_bedrock_without_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.auth", None)
    with pytest.raises(mm.MissingDependencyError) as info:
        mm.model("bedrock:m", region="us-east-1")
    assert info.value.extra == "aws"
    assert "modelmix[aws]" in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("botocore") is None, reason="botocore is not installed")
def test_bedrock_without_any_credentials_says_what_to_set() -> None:
    with pytest.raises(mm.ConfigurationError, match="AWS_BEARER_TOKEN_BEDROCK"):
        mm.model("bedrock:m", region="us-east-1")


def test_bedrock_signing_refuses_a_users_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with pytest.raises(mm.ConfigurationError, match="api_key="):
        mm.model("bedrock:m", region="us-east-1", http_client=httpx.Client())


def test_bedrock_region_options_are_listed_in_its_environment() -> None:
    assert {"AWS_BEARER_TOKEN_BEDROCK", "AWS_REGION", "BEDROCK_BASE_URL"} <= set(BedrockProvider.environment())


def test_vertex_async_token_provider_in_a_sync_call_says_what_to_do() -> None:
    async def tokens() -> str:
        return "ya29.async"

    model = mm.model("vertex:google/gemini-2.5-flash", project="p", token_provider=tokens, max_retries=0)
    with pytest.raises(mm.ConfigurationError, match="achat/astream") as info:
        model.chat("hi")
    assert "vertex" in str(info.value)
