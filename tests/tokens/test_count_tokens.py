"""`count_tokens`: method and encoding by model, the chat-format recipe, inputs, errors."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix.providers import _compat_quirks
from modelmix.providers.azure import AzureModel
from modelmix.tokens import TokenCount, _estimate, _model_tokenizers, acount_tokens, count_tokens
from modelmix.tokens._chat_format import image_tokens, render_tool_namespace
from modelmix.tokens._counting import openai_encoding
from modelmix.tokens._tiktoken_files import encoding


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("GPT-4O", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("llama3.1", None),
        ("phi-4", None),
        ("my-deployment", None),
    ],
)
def test_encoding_by_family(name: str, expected: str | None) -> None:
    assert openai_encoding(name) == expected


def test_hello_world_on_gpt_4o() -> None:
    # "hello world" is 2 tokens; a message adds 3 and its role ("user", 1); the reply adds 3.
    counted = count_tokens("hello world", model="gpt-4o")
    assert counted == TokenCount(9, exact=True, method="tiktoken", encoding="o200k_base")
    assert int(counted) == 9


def test_model_strings_with_a_provider_prefix() -> None:
    assert count_tokens("hi", model="openai:gpt-4o-mini").encoding == "o200k_base"
    assert count_tokens("hi", model="azure:gpt-35-turbo").encoding == "cl100k_base"
    # A backend of open models never means an OpenAI model, whatever the name.
    on_ollama = count_tokens("hi", model="ollama:gpt-oss:20b")
    assert on_ollama.method == "estimate"
    assert not on_ollama.exact


def test_messages_take_every_form_chat_takes() -> None:
    as_dicts = count_tokens(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], model="gpt-4o"
    )
    as_objects = count_tokens([mm.system("Be brief."), mm.user("Hi")], model="gpt-4o")
    as_parts = count_tokens(
        [mm.system("Be brief."), {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], model="gpt-4o"
    )
    assert as_dicts == as_objects == as_parts


def test_a_name_costs_its_tokens_and_one_more() -> None:
    plain = count_tokens([{"role": "user", "content": "Hi"}], model="gpt-4o").tokens
    named = count_tokens([{"role": "user", "content": "Hi", "name": "bob"}], model="gpt-4o").tokens
    assert named == plain + len(encoding("o200k_base").encode("bob")) + 1


def test_model_objects_and_wrappers() -> None:
    model = mm.model("openai:gpt-4o-mini", api_key="sk-test", max_retries=0)
    wrapped = mm.retrying(model)
    assert (
        count_tokens("hello", model=model)
        == count_tokens("hello", model=wrapped)
        == count_tokens("hello", model="gpt-4o-mini")
    )


def test_azure_deployment_named_after_its_model() -> None:
    deployment = AzureModel("gpt-35-turbo", endpoint="https://x.openai.azure.com", api_key="k")
    counted = count_tokens("hello", model=deployment)
    assert counted.exact
    assert counted.encoding == "cl100k_base"


def test_azure_deployment_with_a_reasoning_profile() -> None:
    deployment = AzureModel("reasoner", endpoint="https://x.openai.azure.com", api_key="k", profile="o-series")
    counted = count_tokens("hello", model=deployment)
    assert counted.exact
    assert counted.encoding == "o200k_base"


def test_azure_gpt_deployment_with_an_uninformative_name_says_what_it_assumed() -> None:
    deployment = AzureModel("prod-chat", endpoint="https://x.openai.azure.com", api_key="k", profile="gpt")
    counted = count_tokens("hello", model=deployment)
    assert counted.encoding == "o200k_base"
    assert not counted.exact
    assert "encoding='cl100k_base'" in counted.note
    forced = count_tokens("hello", model=deployment, encoding="cl100k_base")
    assert forced.exact
    assert forced.encoding == "cl100k_base"


def test_unknown_model_is_an_estimate_that_says_so() -> None:
    counted = count_tokens("hello there, how are you?", model="some-private-model")
    assert counted.method == "estimate"
    assert not counted.exact
    assert counted.encoding is None
    assert "estimate" in counted.note
    assert "some-private-model" in counted.note


def test_known_family_estimate_is_calibrated() -> None:
    text = "Calibration makes the estimate track real vocabularies. " * 20
    unknown = count_tokens(text, model="mystery").tokens
    llama = count_tokens(text, model="ollama:llama3.1")
    assert llama.method == "estimate"
    assert "large-vocabulary" in llama.note
    assert llama.tokens < unknown
    exact = count_tokens(text, model="gpt-4o").tokens
    assert abs(llama.tokens - exact) / exact < 0.2


def test_one_estimator() -> None:
    # The usage repair of servers that send none and count_tokens share the estimate.
    assert _compat_quirks.estimate_text_tokens is _estimate.estimate_text_tokens
    assert _compat_quirks.estimate_prompt_tokens is _estimate.estimate_prompt_tokens


def test_token_count_is_frozen() -> None:
    counted = count_tokens("hi", model="gpt-4o")
    with pytest.raises(dataclasses.FrozenInstanceError):
        counted.tokens = 1  # type: ignore[misc]


# ------------------------------------------------------------------------------ your tokenizer


@pytest.mark.parametrize("kind", ["count", "tokens"])
def test_your_tokenizer(kind: str) -> None:
    def by_words(text: str) -> Any:
        words = text.split()
        return len(words) if kind == "count" else list(range(len(words)))

    counted = count_tokens("one two three", model="my-model", tokenizer=by_words)
    # 3 words, framed with the estimated framing (4 per message, 3 for the reply).
    assert counted == TokenCount(10, exact=False, method="tokenizer", note=counted.note)
    on_openai = count_tokens("one two three", model="gpt-4o", tokenizer=by_words)
    # OpenAI's framing is known: 3 + "user" (1 word) + 3 words + 3.
    assert on_openai.exact
    assert on_openai.tokens == 10


def test_a_tokenizer_that_returns_something_else_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="int or a list of tokens"):
        count_tokens("hi", model="m", tokenizer=lambda text: "no")  # type: ignore[arg-type,return-value]
    with pytest.raises(mm.ConfigurationError, match="callable"):
        count_tokens("hi", model="m", tokenizer=42)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"messages": 42, "model": "gpt-4o"}, "messages must be a string, a message or a list"),
        ({"messages": [], "model": "gpt-4o"}, "messages is empty"),
        ({"messages": [{"role": "robot", "content": "x"}], "model": "gpt-4o"}, "not a valid message"),
        ({"messages": "x", "model": 42}, "model= must be a model name"),
        ({"messages": "x", "model": ""}, "model= must be a model name"),
        ({"messages": "x", "model": "gpt-4o", "tools": "get_weather"}, "tools= must be a list of tools"),
        ({"messages": "x", "model": "gpt-4o", "encoding": "p50k_base"}, "o200k_base, cl100k_base"),
        ({"messages": "x", "model": "gpt-4o", "response_format": 42}, "response_format"),
    ],
)
def test_bad_input_is_a_configuration_error_that_says_what_is_accepted(arguments: dict[str, Any], says: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=says):
        count_tokens(**arguments)


# ------------------------------------------------------------------------------------- tools


class Unit(BaseModel):
    name: Literal["c", "f"]


class Forecast(BaseModel):
    """Ask for a forecast."""

    city: str
    days: int = 1
    units: list[Unit] = []


def test_tool_definitions_render_as_the_model_reads_them() -> None:
    functions = [
        {
            "name": "get_weather",
            "description": "Get the weather.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city."},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "days": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["city"],
            },
        },
        {"name": "ping", "parameters": {"type": "object", "properties": {}}},
    ]
    assert render_tool_namespace(functions) == (
        "namespace functions {\n\n"
        "// Get the weather.\n"
        "type get_weather = (_: {\n"
        "// The city.\n"
        "city: string,\n"
        'unit?: "c" | "f",\n'
        "days?: number,\n"
        "tags?: string[],\n"
        "where?: {\n"
        "  lat: number,\n"
        "},\n"
        "note?: string | null,\n"
        "}) => any;\n\n"
        "type ping = () => any;\n\n"
        "} // namespace functions"
    )


def test_nested_pydantic_models_follow_their_refs() -> None:
    parameters = Forecast.model_json_schema()
    rendered = render_tool_namespace([{"name": "forecast", "parameters": parameters}])
    assert 'units?: {\n  name: "c" | "f",\n}[],' in rendered


def test_tools_in_every_form_count_the_same() -> None:
    def forecast(city: str, days: int = 1) -> str:
        """Ask for a forecast."""
        return city

    schema = {
        "type": "function",
        "function": {
            "name": "forecast",
            "description": "Ask for a forecast.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
                "required": ["city"],
            },
        },
    }
    as_function = count_tokens("Forecast for Oslo?", model="gpt-4o", tools=[forecast])
    as_dict = count_tokens("Forecast for Oslo?", model="gpt-4o", tools=[schema])
    as_tool = count_tokens("Forecast for Oslo?", model="gpt-4o", tools=[mm.tool(forecast)])
    assert as_function == as_dict == as_tool
    assert as_function.tokens > count_tokens("Forecast for Oslo?", model="gpt-4o").tokens + 10


def test_tool_results_are_attributed_to_the_function_they_answer() -> None:
    call = mm.ToolCall.from_raw("call_1", "lookup_population", '{"country": "Crumpet"}')
    conversation = [mm.user("How many?"), mm.assistant(tool_calls=[call]), mm.tool_result("call_1", "123124")]
    with_name = count_tokens(conversation, model="gpt-4o-mini").tokens
    unanswered = [mm.user("How many?"), mm.assistant(tool_calls=[call]), mm.tool_result("other", "123124")]
    assert with_name - count_tokens(unanswered, model="gpt-4o-mini").tokens == len(
        encoding("o200k_base").encode("lookup_population")
    )


# ------------------------------------------------------------------------------------ images


def _png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (512, 512, 85 + 170),  # one tile
        (1024, 1024, 85 + 170 * 4),  # shortest side → 768: 2x2 tiles
        (2048, 4096, 85 + 170 * 6),  # fit 2048: 1024x2048, shortest → 768: 768x1536, 2x3 tiles
        (100, 100, 85 + 170),
    ],
)
def test_images_with_a_known_size_cost_their_tiles(width: int, height: int, tokens: int) -> None:
    assert image_tokens(mm.image(data=_png(width, height))) == (tokens, True)


def test_low_detail_and_unknown_sizes() -> None:
    assert image_tokens(mm.image("https://example.com/cat.png", detail="low")) == (85, True)
    text_only = count_tokens("What is this?", model="gpt-4o").tokens
    with_url = count_tokens([mm.user("What is this?", mm.image("https://example.com/cat.png"))], model="gpt-4o")
    assert with_url.tokens == text_only + 765
    assert not with_url.exact
    assert "1024x1024" in with_url.note
    with_bytes = count_tokens([mm.user("What is this?", mm.image(data=_png(512, 512)))], model="gpt-4o")
    assert with_bytes.exact
    assert with_bytes.tokens == text_only + 255


# ---------------------------------------------------------------- a llama.cpp server's tokenizer


def _server(handler: Any) -> Any:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    aclient = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return mm.model(
        "llamacpp:any", base_url="http://127.0.0.1:9/v1", http_client=client, async_http_client=aclient, max_retries=0
    )


@pytest.fixture(autouse=True)
def _forget_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_model_tokenizers, "_known_route", {})


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("route", "field"),
    [("/tokenize", "content"), ("/extras/tokenize", "input")],
    ids=["llama-server", "llama-cpp-python"],
)
async def test_server_tokenizer_routes(route: str, field: str, mode: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path != route:
            return httpx.Response(404, json={"detail": "Not Found"})
        text = json.loads(request.content)[field]
        return httpx.Response(200, json={"tokens": list(range(len(text.split())))})

    model = _server(handler)
    counted = (
        count_tokens("one two three", model=model)
        if mode == "sync"
        else await acount_tokens("one two three", model=model)
    )
    assert counted.method == "server-tokenizer"
    assert not counted.exact
    assert counted.tokens == 3 + 4 + 3  # the server's 3 tokens + estimated framing
    again = count_tokens("one two three", model=model)
    assert again == counted
    assert seen.count(route) == 2
    assert len(seen) == (3 if route == "/extras/tokenize" else 2)


def test_server_tokenizer_failures_fall_back_to_the_estimate() -> None:
    model = _server(lambda request: httpx.Response(500, json={"error": "boom"}))
    counted = count_tokens("one two three", model=model)
    assert counted.method == "estimate"
    assert "HTTP 500" in counted.note


def test_server_is_only_asked_for_a_model_object_and_when_allowed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    assert count_tokens("hi", model=_server(refuse), use_server=False).method == "estimate"
    assert count_tokens("hi", model="llamacpp:any").method == "estimate"


def test_an_unreachable_server_answers_quickly_with_an_estimate() -> None:
    model = mm.model("llamacpp:any", base_url="http://127.0.0.1:9/v1", max_retries=0)
    counted = count_tokens("hi", model=model, timeout=1.0)
    assert counted.method == "estimate"
    assert "not available" in counted.note


def test_an_unknown_option_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="unknown option"):
        count_tokens("hi", model="gpt-4o", max_tokens=5)  # type: ignore[call-arg]


def test_a_fallback_chain_is_counted_member_by_member() -> None:
    first = mm.model("openai:gpt-4o-mini", api_key="sk-test")
    chain = mm.fallback(first, mm.model("ollama:llama3.1"))
    with pytest.raises(mm.ConfigurationError, match=r"chain\.models"):
        count_tokens("hello", model=chain)
    assert [count_tokens("hello", model=member).method for member in chain.models] == ["tiktoken", "estimate"]
