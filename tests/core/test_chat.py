"""Non-streamed calls: response parsing, error bodies of every shape, size caps, redirects."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._auth import NoAuth
from modelmix._codec import Reply
from modelmix._http import HTTPModel
from modelmix.providers._error_bodies import error_from_body, error_info
from modelmix.providers._openai_wire import OpenAIChatCodec
from modelmix.providers.openai import OpenAIModel

from ._helpers import Driver, completion, provider
from .conftest import MakeModel


def _error_from_body(status: int, headers: dict[str, str], body: bytes) -> mm.APIStatusError:
    return error_from_body(body, Reply(status, httpx.Headers(headers)))


def respond(status: int, body: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        content = raw if raw is not None else json.dumps(body).encode()
        return httpx.Response(status, headers={"x-request-id": "req-1", **(headers or {})}, content=content)

    return handler


async def test_completion_fields(driver: Driver, make_model: MakeModel) -> None:
    data = completion("Hi")
    data["choices"].insert(0, {"index": 1, "message": {"role": "assistant", "content": "second"}})
    data["usage"] = {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 2}}
    response = await driver.chat(make_model(respond(200, data)), "hi")
    assert response.text == "Hi"
    assert response.message.role == "assistant"
    assert response.usage == mm.Usage(input_tokens=3, output_tokens=1, cached_tokens=2)
    assert response.request_id == "req-1"
    assert response.provider == "openai"
    assert response.finish_reason == "stop"


async def test_null_content_without_tools_is_empty_text(driver: Driver, make_model: MakeModel) -> None:
    data = completion()
    data["choices"][0]["message"]["content"] = None
    response = await driver.chat(make_model(respond(200, data)), "hi")
    assert response.text == ""
    assert response.message.content == ""


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (200, {"error": "model is loading"}, mm.ServerError, "model is loading"),
        (200, {"object": "chat.completion"}, mm.ServerError, "without any choices"),
        (400, {"detail": [{"loc": ["body"], "msg": "bad"}]}, mm.BadRequestError, '[{"loc"'),
        (404, {"statusCode": 404, "message": "Resource not found"}, mm.NotFoundError, "Resource not found"),
        (
            400,
            {"error": {"message": "This model's maximum context length is 8192 tokens. However, you requested 9000"}},
            mm.ContextLengthExceededError,
            "maximum context length",
        ),
        (
            400,
            {
                "error": {
                    "type": "exceed_context_size_error",
                    "message": "too big",
                    "n_ctx": 512,
                    "n_prompt_tokens": 900,
                }
            },
            mm.ContextLengthExceededError,
            "too big",
        ),
        (
            400,
            {
                "error": {
                    "code": "content_filter",
                    "message": "filtered",
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {
                            "violence": {"filtered": True, "severity": "medium"},
                            "hate": {"filtered": False, "severity": "safe"},
                            "jailbreak": {"detected": True, "filtered": True},
                        },
                    },
                }
            },
            mm.PromptFilteredError,
            "filtered",
        ),
        (409, {"error": {"message": "lock timeout"}}, mm.ConflictError, "lock timeout"),
        (422, {"error": {"message": "nope", "param": "temperature"}}, mm.UnprocessableEntityError, "nope"),
        (500, None, mm.ServerError, "HTTP 500"),
    ],
)
async def test_error_bodies(
    driver: Driver, make_model: MakeModel, status: int, body: Any, cls: type[mm.APIStatusError], message: str
) -> None:
    raw = b"" if body is None else None
    with pytest.raises(cls) as info:
        await driver.chat(make_model(respond(status, body, raw=raw)), "hi")
    error = info.value
    assert message in error.message
    assert error.request_id == "req-1"
    assert (error.provider, error.model, error.host) == ("openai", "gpt-4o-mini", "api.openai.com")
    if isinstance(error, mm.ContextLengthExceededError) and status == 400 and "n_ctx" in json.dumps(body):
        assert (error.limit, error.requested) == (512, 900)
    elif isinstance(error, mm.ContextLengthExceededError):
        assert (error.limit, error.requested) == (8192, 9000)
    if isinstance(error, mm.PromptFilteredError):
        assert error.categories == {"violence": "medium", "jailbreak": "detected"}
    if isinstance(error, mm.ConflictError):
        assert error.retryable is True, "OpenAI's 409 is a transient lock timeout"
    if isinstance(error, mm.UnprocessableEntityError):
        assert error.param == "temperature"


def test_error_body_helpers() -> None:
    text = _error_from_body(502, {"retry-after": "4"}, b"<html>Bad gateway</html>")
    assert isinstance(text, mm.ServerError)
    assert text.message == "<html>Bad gateway</html>"
    assert text.retry_after == 4.0
    assert _error_from_body(500, {}, b"\xff\xfe").message == "\ufffd\ufffd"
    assert error_info({"message": "m", "code": 7}, fallback="f").code == "7"
    assert error_info({"error": ""}, fallback="f").message == "f"
    assert error_info(["odd"], fallback="f").message == "f"
    assert error_info({"error": {"message": None}}, fallback="f").message == "f"
    only_number = _error_from_body(400, {}, b'{"error": {"message": "context length is 4096"}}')
    assert isinstance(only_number, mm.ContextLengthExceededError)
    assert (only_number.limit, only_number.requested) == (4096, None)
    assert _error_from_body(400, {}, b'{"error": {"message": "m", "innererror": {"code": "Other"}}}').code is None


async def test_non_json_success_body(driver: Driver, make_model: MakeModel) -> None:
    with pytest.raises(mm.ProviderError) as info:
        await driver.chat(make_model(respond(200, raw=b"<html>proxy login</html>")), "hi")
    error = info.value
    assert type(error) is mm.ProviderError
    assert error.code == "invalid_json"
    assert error.retryable is True
    assert "proxy login" not in str(error)


async def test_redirects_are_not_followed(driver: Driver, make_model: MakeModel) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"location": "https://evil.test/steal"})

    with pytest.raises(mm.UnexpectedRedirectError) as info:
        await driver.chat(make_model(handler), "hi")
    assert info.value.location_host == "evil.test"
    assert len(seen) == 1


async def test_body_cap_from_content_length(driver: Driver, make_model: MakeModel) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(64 << 20)}, content=b"{}")

    with pytest.raises(mm.ResponseTooLargeError) as info:
        await driver.chat(make_model(handler), "hi")
    assert info.value.limit == 32 << 20
    assert info.value.phase == "local"


@pytest.mark.parametrize("stream", [False, True])
async def test_body_cap_while_reading(driver: Driver, stream: bool) -> None:
    big = json.dumps(completion("x" * 5000)).encode()

    class Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield from (big[i : i + 1000] for i in range(0, len(big), 1000))

        async def __aiter__(self) -> Any:
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Pieces())

    transport = httpx.MockTransport(handler)
    with httpx.Client(transport=transport) as client:
        async with httpx.AsyncClient(transport=transport) as aclient:
            model = HTTPModel(
                "m",
                provider=provider(
                    "local",
                    base_url="http://127.0.0.1:9/v1",
                    auth=NoAuth(),
                    http_client=client,
                    async_http_client=aclient,
                ),
                codec=OpenAIChatCodec(),
                max_response_bytes=2048,
            )
            call = driver.events(model) if stream else driver.chat(model, "hi")
            with pytest.raises(mm.ResponseTooLargeError) as info:
                await call
    assert info.value.limit == 2048
    assert "2048-byte cap" in str(info.value)


def test_http_model_configuration_errors() -> None:
    with pytest.raises(mm.ConfigurationError, match="model name is required"):
        HTTPModel("", provider=provider("x", base_url="http://h", auth=NoAuth()), codec=OpenAIChatCodec())
    with pytest.raises(mm.ConfigurationError, match="must start with http"):
        HTTPModel("m", provider=provider("x", base_url="ftp://h", auth=NoAuth()), codec=OpenAIChatCodec())


def test_query_parameters_and_context_window() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        model = HTTPModel(
            "dep",
            provider=provider(
                "azure",
                base_url="https://r.openai.azure.test/openai/deployments/dep/",
                auth=NoAuth(),
                query={"api-version": "2024-10-21"},
                http_client=client,
            ),
            codec=OpenAIChatCodec(),
            context_window=128_000,
        )
        model.chat("hi")
        model.close()  # not owned: stays open for the caller
        assert not client.is_closed
    assert str(seen[0].url) == (
        "https://r.openai.azure.test/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    )
    assert model.context_window == 128_000
    assert "authorization" not in seen[0].headers
    assert repr(model) == "<HTTPModel azure:dep at r.openai.azure.test auth=NoAuth()>"


async def test_model_base_class_defaults() -> None:
    class Echo(mm.Model):
        provider = "echo"
        name = "e"

        def __init__(self) -> None:
            self.settings = {}

        def chat(self, messages: Any, **settings: Any) -> mm.ChatResponse:
            return mm.ChatResponse(message=mm.assistant("e"), provider="echo")

        async def achat(self, messages: Any, **settings: Any) -> mm.ChatResponse:
            return self.chat(messages)

        def stream(self, messages: Any, **settings: Any) -> Any:
            raise NotImplementedError

        def astream(self, messages: Any, **settings: Any) -> Any:
            raise NotImplementedError

    with Echo() as echo:
        assert echo.context_window is None
        assert repr(echo) == "<Echo echo:e>"
        assert echo._describe() == {"provider": "echo", "model": "e"}
    async with Echo() as aecho:
        assert (await aecho.achat("x")).text == "e"


def test_a_user_supplied_client_keeps_its_own_timeouts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "ok"}}]})

    own = httpx.Client(transport=httpx.MockTransport(handler), timeout=httpx.Timeout(42.0))
    OpenAIModel("gpt-4o-mini", api_key="sk-test", http_client=own).chat("hi")
    assert seen[-1].extensions["timeout"]["read"] == 42.0
    OpenAIModel("gpt-4o-mini", api_key="sk-test", http_client=own, timeout=7.0).chat("hi")
    assert seen[-1].extensions["timeout"]["read"] == 7.0
    OpenAIModel("gpt-4o-mini", api_key="sk-test", http_client=own).chat("hi", timeout=3.0)
    assert seen[-1].extensions["timeout"]["read"] == 3.0
