"""No part of an API key longer than four characters shows anywhere an error reaches: message,
args, fields, str, repr, the ``__cause__``/``__context__`` chain (with the httpx request it
failed on), a formatted traceback, or the pickled bytes — whichever way the server echoes it."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._error_context import redact_secrets
from modelmix.providers.azure import AzureModel

from ._loopback import closed_port

KEY = "sk-CANARYq7Zt9LmX2vB8nR4kW6yH3pJ5sD1fG0aE"  # 43 characters, like a real key


def visible_parts(text: str, key: str = KEY) -> set[str]:
    """Every run of five characters of `key` that shows in `text`."""
    return {key[i : i + 5] for i in range(len(key) - 4) if key[i : i + 5] in text}


def related(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[Any] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [item.__cause__, item.__context__, getattr(item, "mapped", None), *getattr(item, "exceptions", ())]


def everything_said(error: BaseException) -> str:
    texts = ["".join(traceback.format_exception(error)), pickle.dumps(error).decode("latin-1")]
    for item in related(error):
        texts += [
            str(item),
            repr(item),
            *map(repr, item.args),
            repr(vars(item)),
            *map(repr, getattr(item, "__notes__", [])),
        ]
        if isinstance(item, httpx.HTTPError):
            try:
                request = item.request
            except RuntimeError:
                continue
            texts += [repr(request), str(request.url), repr(request.headers), repr(dict(request.headers))]
    return "\n".join(texts)


def assert_no_part_of_the_key(error: BaseException) -> None:
    assert visible_parts(everything_said(error)) == set()


Handler = Callable[[httpx.Request], httpx.Response]


def openai_model(handler: Handler) -> Any:
    transport = httpx.MockTransport(handler)
    return mm.model(
        "openai:gpt-x",
        api_key=KEY,
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


def answering(status: int, error: dict[str, Any]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": error})

    return handler


async def drain(model: mm.Model) -> None:
    async with model.astream("hi") as stream:
        async for _ in stream:
            pass


ECHOES: dict[str, Handler] = {
    "in code": answering(401, {"message": "bad key", "code": KEY, "type": "invalid_request_error"}),
    "in type": answering(401, {"message": "bad key", "type": f"key {KEY} refused"}),
    "in param": answering(422, {"message": "unsupported", "param": KEY}),
    "across the cut": answering(401, {"message": "x" * 980 + f" key {KEY} was refused"}),
    "cut short by the server": answering(401, {"message": f"Incorrect API key provided: {KEY[:30]}****"}),
    "masked in the middle": answering(401, {"message": f"key {KEY[:12]}********{KEY[-12:]} refused"}),
    "in a 200 body": answering(200, {"message": f"upstream refused {KEY}", "code": KEY}),
    "in a 429": answering(429, {"message": f"slow down, {KEY}", "type": KEY}),
}


@pytest.mark.parametrize("handler", ECHOES.values(), ids=ECHOES.keys())
def test_an_echoed_key_never_shows_sync(handler: Handler) -> None:
    with pytest.raises(mm.ProviderError) as caught:
        openai_model(handler).chat("hi")
    assert_no_part_of_the_key(caught.value)


@pytest.mark.parametrize("handler", ECHOES.values(), ids=ECHOES.keys())
async def test_an_echoed_key_never_shows_in_an_async_stream(handler: Handler) -> None:
    with pytest.raises(mm.ProviderError) as caught:
        await drain(openai_model(handler))
    assert_no_part_of_the_key(caught.value)


def test_the_message_keeps_its_length_cap_after_redaction() -> None:
    with pytest.raises(mm.ProviderError) as caught:
        openai_model(ECHOES["across the cut"]).chat("hi")
    assert len(caught.value.message) <= 1000
    assert caught.value.message.startswith("x" * 900)


def test_azures_api_key_header_is_not_in_the_httpx_cause_of_a_connection_error() -> None:
    model = AzureModel("gpt-4o", endpoint=f"http://127.0.0.1:{closed_port()}", api_key=KEY)
    with pytest.raises(mm.TransportError) as caught:
        model.chat("hi")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert_no_part_of_the_key(caught.value)


async def test_azures_api_key_header_is_not_in_the_cause_of_a_mid_stream_failure() -> None:
    class Breaks(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Breaks())

    transport = httpx.MockTransport(handler)
    model = AzureModel(
        "gpt-4o",
        endpoint="https://contoso.openai.azure.com",
        api_key=KEY,
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    with pytest.raises(mm.ModelMixError) as caught:
        await drain(model)
    assert_no_part_of_the_key(caught.value)


def test_a_key_in_an_httpx_error_text_is_removed_from_the_kept_cause() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said no to {KEY}", request=request)

    with pytest.raises(mm.TransportError) as caught:
        openai_model(handler).chat("hi")
    assert_no_part_of_the_key(caught.value)


def test_a_chain_of_failures_keeps_no_part_of_any_key() -> None:
    chain = mm.fallback(openai_model(ECHOES["in code"]), openai_model(ECHOES["across the cut"]))
    with pytest.raises(mm.AllModelsFailedError) as caught:
        chain.chat("hi")
    assert_no_part_of_the_key(caught.value)


@pytest.mark.parametrize(
    ("text", "secrets", "limit", "expected"),
    [
        ("key abcdefghij!", ("abcdefghij",), None, "key …!"),
        ("part abcdefg and fghij", ("abcdefghij",), None, "part … and …"),
        ("four abcd stays", ("abcdefghij",), None, "four abcd stays"),
        ("short key abc", ("abc",), None, "short key …"),
        ("two keys k1-aaaaaa k2-bbbbbb", ("k1-aaaaaa", "k2-bbbbbb"), None, "two keys … …"),
        ("0123456789SECRETKEY", ("SECRETKEY",), 12, "0123456789…"),
        ("nothing to hide", (), 7, "nothing"),
    ],
)
def test_redact_secrets(text: str, secrets: tuple[str, ...], limit: int | None, expected: str) -> None:
    assert redact_secrets(text, secrets, limit=limit) == expected


CLOUDS: dict[str, dict[str, Any]] = {
    "mistral": {},
    "deepseek": {},
    "groq": {},
    "openrouter": {},
    "together": {},
    "gemini": {},
    "vertex": {"project": "my-project"},
    "databricks": {"base_url": "https://adb-1.azuredatabricks.net"},
    "bedrock": {"region": "us-east-1"},
}


def cloud_model(prefix: str, handler: Handler) -> Any:
    transport = httpx.MockTransport(handler)
    return mm.model(
        f"{prefix}:some-model",
        api_key=KEY,
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **CLOUDS[prefix],
    )


@pytest.mark.parametrize("prefix", CLOUDS)
@pytest.mark.parametrize("echo", ["in code", "across the cut", "in a 200 body", "in a 429"])
def test_a_cloud_presets_echoed_key_never_shows(prefix: str, echo: str) -> None:
    model = cloud_model(prefix, ECHOES[echo])
    assert visible_parts(repr(model)) == set()
    with pytest.raises(mm.ProviderError) as caught:
        model.chat("hi")
    assert caught.value.provider == prefix
    assert_no_part_of_the_key(caught.value)


@pytest.mark.parametrize("prefix", ["openrouter", "groq"])
async def test_a_key_echoed_in_the_details_a_preset_adds_never_shows(prefix: str) -> None:
    # OpenRouter's metadata.raw and Groq's failed_generation join the message: redacted as well.
    details = {"metadata": {"provider_name": "Up", "raw": f"upstream got {KEY}"}, "failed_generation": f"{KEY}"}
    model = cloud_model(prefix, answering(400, {"message": "refused", **details}))
    with pytest.raises(mm.ProviderError) as caught:
        await drain(model)
    assert_no_part_of_the_key(caught.value)
    assert caught.value.message.startswith("refused (")
