"""Tools from plain Python: schemas from signatures, encoding on each wire, tool_choice, typed
arguments of the calls a model sends back."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal, Optional

import httpx
import pytest
from pydantic import BaseModel, Field

import modelmix as mm
from modelmix._codec import RequestContext
from modelmix._messages import ToolCall, to_messages
from modelmix._profile import ModelProfile
from modelmix._settings import merge_settings
from modelmix._tools import ToolArgumentsError, tool
from modelmix.providers._ollama_wire import OllamaCodec
from modelmix.providers._openai_wire import OpenAIChatCodec

from ._helpers import Driver, completion
from .conftest import MakeModel


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


class Place(BaseModel):
    """Where to look."""

    city: str
    country: str | None = None


def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: int = 1) -> str:
    """Current weather for a city.

    Longer notes that are not part of the description.
    """
    return f"sunny in {city}"


async def fetch_forecast(
    place: Place,
    hours: Annotated[int, Field(ge=1, le=48, description="How far ahead")],
    note: Optional[str] = None,  # the old spelling must work too
    tags: list[Literal["rain", "wind"]] | None = None,
) -> str:
    """Forecast for a place."""
    return "cloudy"


def no_doc(x: float) -> float:
    return x


class Booking(BaseModel):
    """Book a table."""

    name: str
    people: int = Field(ge=1)
    when: Literal["lunch", "dinner"] = "dinner"


# ------------------------------------------------------------------------------ schemas


def test_a_typed_function_becomes_a_schema() -> None:
    described = tool(get_weather)
    assert described.name == "get_weather"
    assert described.description == "Current weather for a city."
    assert described.function is get_weather
    params = described.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string"}
    assert params["properties"]["days"] == {"type": "integer", "default": 1}
    unit = params["properties"]["unit"]
    assert unit["default"] == "c"
    assert params["$defs"]["Unit"]["enum"] == ["c", "f"]
    assert "title" not in json.dumps(params)


def test_async_function_nested_model_optional_and_field_descriptions() -> None:
    params = tool(fetch_forecast).parameters
    assert params["required"] == ["place", "hours"]
    hours = params["properties"]["hours"]
    assert hours == {"type": "integer", "minimum": 1, "maximum": 48, "description": "How far ahead"}
    assert params["properties"]["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert params["properties"]["note"]["default"] is None
    tags = params["properties"]["tags"]["anyOf"][0]
    assert tags == {"type": "array", "items": {"type": "string", "enum": ["rain", "wind"]}}
    assert params["$defs"]["Place"]["required"] == ["city"]
    assert params["$defs"]["Place"]["description"] == "Where to look."
    assert tool(fetch_forecast).function is fetch_forecast


def test_name_and_description_override_and_no_docstring() -> None:
    renamed = tool(get_weather, name="weather", description="Weather now")
    assert (renamed.name, renamed.description) == ("weather", "Weather now")
    assert renamed.parameters == tool(get_weather).parameters
    assert tool(get_weather).name == "get_weather"  # the cached tool is not changed
    assert tool(no_doc).description is None


def test_schema_is_built_once_per_function_and_model() -> None:
    assert tool(get_weather) is tool(get_weather)
    assert tool(Booking) is tool(Booking)


def test_a_pydantic_model_class_is_a_tool() -> None:
    described = tool(Booking)
    assert described.name == "Booking"
    assert described.description == "Book a table."
    assert described.parameters["required"] == ["name", "people"]
    assert "description" not in described.parameters


@pytest.mark.parametrize(
    ("fn", "fragment"),
    [
        (lambda x: x, "has no type hint"),
        (lambda *xs: xs, "*xs"),
        (lambda **kw: kw, "**kw"),
    ],
)
def test_functions_that_cannot_be_described(fn: Any, fragment: str) -> None:
    with pytest.raises(mm.ConfigurationError, match=fragment.replace("*", r"\*")):
        tool(fn)


def test_positional_only_and_unsupported_types_are_refused() -> None:
    def positional(a: int, /) -> None: ...

    def opaque(client: httpx.Client) -> None: ...

    with pytest.raises(mm.ConfigurationError, match="positional-only"):
        tool(positional)
    with pytest.raises(mm.ConfigurationError, match="JSON-friendly types"):
        tool(opaque)
    with pytest.raises(mm.ConfigurationError, match="not a tool"):
        merge_settings(None, {"tools": [42]})


# ------------------------------------------------------------------------------ on the wire


def openai_body(settings: dict[str, Any], profile: ModelProfile | None = None) -> dict[str, Any]:
    call = RequestContext("gpt-4o", to_messages("hi"), merge_settings(None, settings), profile or ModelProfile(), False)
    return OpenAIChatCodec().build_body(call)


def ollama_body(settings: dict[str, Any]) -> dict[str, Any]:
    call = RequestContext("qwen3", to_messages("hi"), merge_settings(None, settings), ModelProfile(), False)
    return OllamaCodec().build_body(call)


EXPECTED_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": tool(get_weather).parameters,
        "description": "Current weather for a city.",
    },
}


async def test_plain_function_is_sent_as_a_tool(driver: Driver, make_model: MakeModel) -> None:
    """Before: a ConfigurationError saying plain functions were not accepted (a raw TypeError
    before that). Now the function is described and sent."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=completion("ok"))

    model = make_model(handler)
    await driver.chat(model, "weather?", tools=[get_weather, fetch_forecast, Booking], tool_choice=get_weather)
    body = seen[0]
    assert body["tools"][0] == EXPECTED_WEATHER
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "fetch_forecast", "Booking"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_mixed_tool_forms_on_the_openai_wire() -> None:
    raw = {"type": "function", "function": {"name": "raw", "parameters": {"type": "object"}}}
    body = openai_body({"tools": [get_weather, mm.Tool(name="plain"), raw, tool(no_doc, name="identity")]})
    assert body["tools"][0] == EXPECTED_WEATHER
    assert body["tools"][1]["function"]["name"] == "plain"
    assert body["tools"][2] == raw
    assert body["tools"][3]["function"] == {
        "name": "identity",
        "parameters": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
    }


def test_tools_on_the_ollama_wire() -> None:
    body = ollama_body({"tools": [get_weather, Booking]})
    assert body["tools"][0] == EXPECTED_WEATHER
    assert body["tools"][1]["function"]["name"] == "Booking"
    # Ollama has no tool_choice field: "none" is honoured by not offering the tools.
    assert "tools" not in ollama_body({"tools": [get_weather], "tool_choice": "none"})
    assert "tool_choice" not in ollama_body({"tools": [get_weather], "tool_choice": "auto"})


# ------------------------------------------------------------------------------ tool_choice


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        (get_weather, {"type": "function", "function": {"name": "get_weather"}}),
        (Booking, {"type": "function", "function": {"name": "Booking"}}),
        (tool(get_weather, name="weather"), {"type": "function", "function": {"name": "weather"}}),
    ],
)
def test_tool_choice_forms(choice: Any, sent: Any) -> None:
    tools = [get_weather, Booking, tool(get_weather, name="weather")]
    assert openai_body({"tools": tools, "tool_choice": choice})["tool_choice"] == sent


def test_tool_choice_naming_a_tool_not_given_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match=r"'tool_choice' names 'get_wether'.*'get_weather'"):
        merge_settings(None, {"tools": [get_weather], "tool_choice": "get_wether"})


@pytest.mark.parametrize("choice", ["required", get_weather])
async def test_tool_choice_the_profile_cannot_honour_is_refused_before_sending(
    driver: Driver, make_model: MakeModel, choice: Any
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=completion())

    model = make_model(handler, profile={"tool_choice": ["auto", "none"]})
    with pytest.raises(mm.UnsupportedCapabilityError) as caught:
        await driver.chat(model, "hi", tools=[get_weather], tool_choice=choice)
    assert caught.value.param == "tool_choice"
    assert sent == []


# ------------------------------------------------------------------------------ typed calls


def call(name: str, raw: str) -> ToolCall:
    return ToolCall.from_raw("call_1", name, raw)


def test_function_call_arguments_are_validated_keywords() -> None:
    tools = [get_weather, fetch_forecast]
    args = call("get_weather", '{"city": "Oslo", "unit": "f"}').parse(tools)
    assert args == {"city": "Oslo", "unit": Unit.FAHRENHEIT, "days": 1}
    assert get_weather(**args) == "sunny in Oslo"
    nested = call("fetch_forecast", '{"place": {"city": "Rome"}, "hours": 3}').parse(tools)
    assert nested["place"] == Place(city="Rome")
    assert nested["hours"] == 3


def test_model_tool_call_gives_an_instance() -> None:
    booking = call("Booking", '{"name": "Ada", "people": 2}').parse([Booking])
    assert booking == Booking(name="Ada", people=2)


def test_schema_only_tools_give_the_parsed_object() -> None:
    raw = {"type": "function", "function": {"name": "raw"}}
    assert call("plain", '{"a": [1]}').parse([mm.Tool(name="plain")]) == {"a": [1]}
    assert call("raw", "{}").parse([raw]) == {}


@pytest.mark.parametrize(
    ("name", "raw", "fragment", "errors"),
    [
        ("get_weather", '{"city": "Oslo", "unit": "kelvin"}', "unit", 1),
        ("get_weather", '{"days": "many"}', r"city: Field required \(and 1 more\)", 2),
        ("Booking", '{"name": "Ada", "people": 0}', "people", 1),
        ("get_weather", '{"city": "Os', "invalid JSON", 0),
        ("get_weather", "[1, 2]", "not a JSON object", 0),
        ("delete_all", "{}", "'delete_all', which is not one of the tools given", 0),
    ],
)
def test_arguments_that_do_not_fit_raise_with_the_raw_text(name: str, raw: str, fragment: str, errors: int) -> None:
    with pytest.raises(ToolArgumentsError, match=fragment) as caught:
        call(name, raw).parse([get_weather, Booking])
    error = caught.value
    assert isinstance(error, mm.ProviderError)
    assert error.raw_arguments == raw
    assert error.tool_name == name
    assert len(error.errors) == errors
    assert not error.retryable


async def test_tool_call_from_a_response_parses(make_model: MakeModel) -> None:
    reply = completion()
    reply["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
        ],
    }
    model = make_model(lambda request: httpx.Response(200, json=reply))
    tools = [get_weather]
    response = model.chat("weather?", tools=tools)
    assert response.tool_calls[0].parse(tools) == {"city": "Oslo", "unit": Unit.CELSIUS, "days": 1}


def test_tool_arguments_error_pickles_with_its_context() -> None:
    import pickle

    with pytest.raises(ToolArgumentsError) as caught:
        call("Booking", '{"name": "Ada", "people": 0}').parse([Booking])
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.tool_name, copy.raw_arguments, copy.errors) == (
        "Booking",
        '{"name": "Ada", "people": 0}',
        caught.value.errors,
    )
    assert str(copy) == str(caught.value)


def test_a_method_and_a_callable_object_are_tools() -> None:
    class Shop:
        def price(self, item: str, quantity: int = 1) -> float:
            """Price of an item."""
            return 1.0 * quantity

        def __call__(self, item: str) -> bool:
            return True

    shop = Shop()
    assert tool(shop.price).parameters["required"] == ["item"]
    assert tool(shop.price).description == "Price of an item."
    assert tool(shop).name == "Shop"
    assert call("price", '{"item": "tea", "quantity": "2"}').parse([shop.price]) == {"item": "tea", "quantity": 2}


def test_ollama_refuses_tool_choice_forms_its_api_cannot_express() -> None:
    def get_time(city: str) -> str:
        """The local time in a city."""
        return "noon"

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        model = mm.model("ollama:llama3.2", base_url="http://127.0.0.1:11434", http_client=client, max_retries=0)
        for choice in ("required", "get_time"):
            with pytest.raises(mm.UnsupportedCapabilityError, match="tool_choice"):
                model.chat("hi", tools=[get_time], tool_choice=choice)
    assert sent == []
