"""Constructor and configuration mistakes are `ConfigurationError`s with a suggestion, never a raw
TypeError / AttributeError / httpx.InvalidURL / UnicodeEncodeError, nor a wrong hint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.resilience import BreakerConfig


@pytest.mark.parametrize(
    ("spec", "options", "suggestion"),
    [
        ("llamacpp:", {"tmeout": 3}, "Did you mean 'timeout'?"),
        ("openai:gpt-4o-mini", {"api_key": "sk-test", "organisation": "o"}, "Did you mean 'organization'?"),
        ("ollama:llama3.2", {"keepalive": "5m"}, "Did you mean 'keep_alive'?"),
        ("vllm:m", {"base_ur": "http://127.0.0.1:8000/v1"}, "Did you mean 'base_url'?"),
        (
            "azure:gpt-4o",
            {"api_key": "k", "endpoint": "https://r.openai.azure.com", "api_verison": "x"},
            "'api_version'",
        ),
    ],
)
def test_an_unknown_option_suggests_the_known_one(spec: str, options: dict[str, Any], suggestion: str) -> None:
    with pytest.raises(mm.ConfigurationError, match="unknown option") as caught:
        mm.model(spec, **options)
    assert suggestion in str(caught.value)
    assert "HTTPModel" not in str(caught.value)


def test_a_provider_name_alone_suggests_its_own_prefix() -> None:
    with pytest.raises(mm.ConfigurationError) as caught:
        mm.model("llamacpp")
    assert "'llamacpp:<model>'" in str(caught.value)
    assert "openai:llamacpp" not in str(caught.value)


def test_a_model_name_alone_still_suggests_prefixes() -> None:
    with pytest.raises(mm.ConfigurationError, match="'openai:gpt-4o'"):
        mm.model("gpt-4o")


@pytest.mark.parametrize("key", [123, b"sk-bytes", ["sk"]])
def test_an_api_key_of_the_wrong_type(key: object) -> None:
    with pytest.raises(mm.ConfigurationError, match="api_key= takes a string") as caught:
        mm.model("openai:gpt-4o-mini", api_key=key)
    assert "sk" not in str(caught.value).replace("SecretStr", "")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[bad/v1", "Invalid IPv6"),
        ("http://exa mple.com/v1", "not a host name"),
        ("http://127.0.0.1:99999/v1", "Port"),
        ("http://:8080/v1", "no host"),
        ("ftp://host/v1", "http:// or https://"),
    ],
)
def test_a_bad_base_url(url: str, problem: str) -> None:
    with pytest.raises(mm.ConfigurationError, match="base_url=") as caught:
        mm.model("openai:gpt-4o-mini", api_key="sk-test", base_url=url)
    assert problem in str(caught.value)


def test_a_bad_base_url_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACPP_BASE_URL", "http://exa mple:8080/v1")
    with pytest.raises(mm.ConfigurationError, match="LLAMACPP_BASE_URL"):
        mm.model("llamacpp:")


@pytest.mark.parametrize("headers", [{"x-tag": "café"}, {"x-tag": "a\nb"}, {"bad name": "v"}, {"x-n": 3}])
def test_bad_default_headers(headers: dict[str, Any]) -> None:
    with pytest.raises(mm.ConfigurationError, match="default_headers"):
        mm.model("openai:gpt-4o-mini", api_key="sk-test", default_headers=headers)


@pytest.mark.parametrize("timeout", [-1, 0, "30"])
def test_a_bad_model_timeout(timeout: object) -> None:
    with pytest.raises(mm.ConfigurationError, match="timeout="):
        mm.model("openai:gpt-4o-mini", api_key="sk-test", timeout=timeout)


def test_a_wrong_client_type() -> None:
    with pytest.raises(mm.ConfigurationError, match=r"http_client= takes an httpx\.Client"):
        mm.model("openai:gpt-4o-mini", api_key="sk-test", http_client=httpx.AsyncClient())


@pytest.mark.parametrize("deployment", ["..", ".", "a/b", "a\\b", "x\ny"])
def test_an_azure_deployment_that_would_change_the_url_path(deployment: str) -> None:
    with pytest.raises(mm.ConfigurationError, match="not an Azure deployment name"):
        mm.model(f"azure:{deployment}", api_key="k", endpoint="https://r.openai.azure.com", route="deployments")


def _plain() -> mm.Model:
    return mm.model("openai:gpt-4o-mini", api_key="sk-test", max_retries=0)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: mm.fallback(_plain(), deadline=-1), "deadline"),
        (lambda: mm.fallback(_plain(), deadline=0), "deadline"),
        (lambda: mm.fallback(_plain(), min_attempt_time=-1), "min_attempt_time"),
        (lambda: mm.fallback(_plain(), 42), "argument 2"),  # type: ignore[arg-type]
        (lambda: mm.fallback(_plain(), breaker_config=BreakerConfig(failure_rate=2)), "failure_rate"),
        (lambda: mm.retrying(_plain(), max_retries=-1), "max_retries"),
        (lambda: mm.retrying(_plain(), max_retries=1.5), "max_retries"),  # type: ignore[arg-type]
        (lambda: mm.retrying(_plain(), deadline=-5), "deadline"),
        (lambda: mm.retrying(_plain(), ttft_timeout=0), "ttft_timeout"),
        (lambda: mm.retrying(_plain(), idle_timeout="60"), "idle_timeout"),  # type: ignore[arg-type]
        (lambda: mm.retrying(_plain(), api_key="x"), "mm.model"),
        (lambda: mm.model("openai:gpt-4o-mini", api_key="sk-test", max_retries=-1), "max_retries"),
        (lambda: mm.hedge(_plain(), _plain(), after=-1), "after"),
        (lambda: mm.hedge(_plain(), _plain(), after=0.5, deadline=-1), "deadline"),
        (lambda: mm.hedge(_plain(), _plain(), after="p95", min_samples=0), "min_samples"),
        (lambda: mm.circuit_breaker(_plain(), config=BreakerConfig(window=0)), "window"),
        (lambda: mm.circuit_breaker(_plain(), config=BreakerConfig(open_base=-1)), "open_base"),
        (lambda: mm.circuit_breaker(_plain(), config=BreakerConfig(open_base=60, open_cap=10)), "open_cap"),
    ],
)
def test_wrapper_arguments_are_checked_when_built(build: Any, argument: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=argument):
        build()


def test_good_wrapper_arguments_still_build() -> None:
    chain = mm.fallback(_plain(), _plain(), deadline=None, min_attempt_time=0)
    assert chain.deadline is None
    assert mm.retrying(_plain(), max_retries=0, deadline=0.5, ttft_timeout=None).policy.max_retries == 0
    assert mm.hedge(_plain(), _plain(), after=0).after == 0
