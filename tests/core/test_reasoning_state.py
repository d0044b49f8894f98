"""Opaque reasoning state carried across the turns of a conversation: Responses' encrypted
reasoning items, DeepSeek's ``reasoning_content`` after a tool call, Gemini's thought signatures,
OpenRouter's ``reasoning_details``. Taken from real recordings where ../shared/cassettes has them,
sent back only to the model that produced them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

from .._support import SHARED_CASSETTES, load_cassette, require_shared
from ._helpers import CANARY_KEY, Driver

WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


class Script:
    """A transport that answers with `replies` in order and keeps each request body."""

    def __init__(self, replies: Sequence[tuple[int, dict[str, str], str]]) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        status, headers, body = self.replies[len(self.bodies) - 1]
        return httpx.Response(status, headers=headers, content=body.encode("utf-8"))

    def model(self, spec: str, **options: Any) -> mm.Model:
        transport = httpx.MockTransport(self)
        return mm.model(
            spec,
            api_key=CANARY_KEY,
            max_retries=0,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **options,
        )


def _recorded(backend: str, stem: str) -> dict[str, Any]:
    require_shared(backend)
    return load_cassette(SHARED_CASSETTES / backend / f"{stem}.json")


def _reply(interaction: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    response = interaction["response"]
    return response["status"], response["headers"], response["body"]


def _json(body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {"content-type": "application/json"}, json.dumps(body)


def _sse(chunks: Sequence[dict[str, Any]]) -> tuple[int, dict[str, str], str]:
    text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return 200, {"content-type": "text/event-stream"}, text


async def _answer(driver: Driver, model: mm.Model, messages: Any, stream: bool, **settings: Any) -> mm.ChatResponse:
    if stream:
        return (await driver.events(model, messages, **settings))[1]
    return await driver.chat(model, messages, **settings)


# ------------------------------------------------------------------------ the Responses API

PHASE = "pydantic-ai__test_openai_responses_phase_streamed_on_part_start"


async def test_encrypted_reasoning_from_a_recorded_stream_goes_back_as_openai_took_it(driver: Driver) -> None:
    """The recording's second request is what OpenAI accepted after its first answer: the same
    reasoning item (id, encrypted content, summary) before the assistant's own items."""
    cassette = _recorded("openai-responses", PHASE)
    first, second = cassette["interactions"]
    script = Script([_reply(first), _reply(second)])
    base = first["request"]["url"].removesuffix("responses")
    model = script.model("openai:gpt-5.5", base_url=base, api="responses")
    question = first["request"]["json"]["input"][0]["content"]
    response = (await driver.events(model, question, tools=[_capital_tool()]))[1]

    state = response.message.reasoning_state
    sent_back = [item for item in second["request"]["json"]["input"] if item.get("type") == "reasoning"]
    assert state is not None
    assert state.items == sent_back
    assert state.origin == "openai:gpt-5.5@api.openai.com"
    assert script.bodies[0]["include"] == ["reasoning.encrypted_content"]
    assert script.bodies[0]["store"] is False

    call = response.tool_calls[0]
    follow_up = [mm.user(question), response.message, mm.tool_result(call.id, "Potato City")]
    final = (await driver.events(model, follow_up, tools=[_capital_tool()]))[1]
    assert final.text == "The capital of PotatoLand is **Potato City**."
    assert final.message.reasoning_state is None  # that answer did no reasoning
    items = script.bodies[1]["input"]
    assert [item.get("type") or item.get("role") for item in items] == [
        "user",
        "reasoning",
        "assistant",
        "function_call",
        "function_call_output",
    ]
    assert items[1] == sent_back[0]


def _capital_tool() -> dict[str, Any]:
    schema = {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}
    return {"type": "function", "function": {"name": "get_capital", "parameters": schema}}


async def test_encrypted_reasoning_from_a_recorded_json_answer(driver: Driver) -> None:
    cassette = _recorded("openai-responses", "pydantic-ai__test_reasoning_summary_auto")
    interaction = cassette["interactions"][0]
    script = Script([_reply(interaction), _json(_responses_body("Done."))])
    base = interaction["request"]["url"].removesuffix("responses")
    model = script.model("openai:gpt-5.2", base_url=base, api="responses")
    response = await driver.chat(model, "Write a factorial function.")

    output = json.loads(interaction["response"]["body"])["output"]
    recorded = next(item for item in output if item["type"] == "reasoning")
    state = response.message.reasoning_state
    assert state is not None
    assert state.items == [
        {key: recorded[key] for key in ("type", "id", "encrypted_content", "summary")},
    ]
    await driver.chat(model, [mm.user("Write a factorial function."), response.message, mm.user("Shorter?")])
    assert script.bodies[1]["input"][1] == state.items[0]


def _responses_body(text: str, *, reasoning: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
    return {"status": "completed", "model": "gpt-5-mini", "output": [*reasoning, message]}


def test_only_reasoning_models_are_asked_for_encrypted_reasoning() -> None:
    script = Script([_json(_responses_body("hi"))] * 3)
    script.model("openai:gpt-4o", api="responses").chat("hi")
    script.model("openai:gpt-5-mini", api="responses").chat("hi")
    script.model("openai:gpt-5-mini", api="responses").chat("hi", extra_body={"include": []})
    assert "include" not in script.bodies[0]  # OpenAI answers 400 for a model that does not reason
    assert script.bodies[1]["include"] == ["reasoning.encrypted_content"]
    assert script.bodies[2]["include"] == []  # the caller's own choice wins


def test_a_reasoning_item_the_server_cannot_read_back_is_not_kept() -> None:
    """Without encrypted content an item means something only with state stored on the server
    (and sending its id back without that state is an error)."""
    plain = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking."}]}
    script = Script([_json(_responses_body("hi", reasoning=[plain]))])
    response = script.model("openai:gpt-5-mini", api="responses").chat("hi")
    assert response.reasoning == "Thinking."
    assert response.message.reasoning_state is None


def test_reasoning_items_go_back_only_to_the_model_that_produced_them() -> None:
    item = {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAA-secret", "summary": []}
    script = Script([_json(_responses_body("first", reasoning=[item]))] + [_json(_responses_body("again"))] * 3)
    mini = script.model("openai:gpt-5-mini", api="responses")
    answer = mini.chat("hi")
    history = [mm.user("hi"), answer.message, mm.user("and?")]
    mini.chat(history)
    script.model("openai:gpt-5", api="responses").chat(history)  # another model
    script.model("openai:gpt-5-mini", api="responses", base_url="https://proxy.example/v1").chat(history)
    kinds = [[i.get("type") or i.get("role") for i in body["input"]] for body in script.bodies[1:]]
    assert kinds == [["user", "reasoning", "assistant", "user"], *[["user", "assistant", "user"]] * 2]


def test_a_fallback_to_a_chat_model_sends_the_turn_without_the_state() -> None:
    item = {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAA-secret", "summary": []}
    first = Script([_json(_responses_body("first", reasoning=[item])), (503, {}, "{}")])
    backup = Script([_json({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]})])
    primary = first.model("openai:gpt-5-mini", api="responses")
    answer = primary.chat("hi")
    chain = mm.fallback(primary, backup.model("deepseek:deepseek-chat"))
    assert chain.chat([mm.user("hi"), answer.message, mm.user("and?")]).text == "ok"
    assert backup.bodies[0]["messages"][1] == {"role": "assistant", "content": "first"}
    assert "gAAA-secret" not in json.dumps(backup.bodies[0])


# ------------------------------------------------------------------------ chat completions


def _deepseek_tool_turn(reasoning: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    message = {"role": "assistant", "content": "", "reasoning_content": reasoning, "tool_calls": [call]}
    return {"model": "deepseek-chat", "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}


def _deepseek_tool_chunks(reasoning: Sequence[str]) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"model": "deepseek-chat", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    pieces = [chunk({"role": "assistant", "content": None, "reasoning_content": r}) for r in reasoning]
    arguments = {"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}
    return [*pieces, chunk({"tool_calls": [call]}), chunk({"tool_calls": [arguments]}), chunk({}, "tool_calls")]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_deepseek_gets_the_reasoning_of_a_tool_turn_back(driver: Driver, stream: bool) -> None:
    """DeepSeek's thinking mode answers HTTP 400 when a turn that called tools comes back
    without its ``reasoning_content``."""
    first = _sse(_deepseek_tool_chunks(["Look it ", "up."])) if stream else _json(_deepseek_tool_turn("Look it up."))
    done = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}]}
    script = Script([first, _json(done)])
    model = script.model("deepseek:deepseek-chat")
    response = await _answer(driver, model, "Weather in Oslo?", stream, tools=[WEATHER])
    assert response.reasoning == "Look it up."
    state = response.message.reasoning_state
    assert state is not None
    assert state.fields == {"reasoning_content": "Look it up."}

    history = [mm.user("Weather in Oslo?"), response.message, mm.tool_result("call_1", "sunny")]
    await driver.chat(model, history, tools=[WEATHER])
    sent = script.bodies[1]["messages"][1]
    assert sent["reasoning_content"] == "Look it up."
    assert sent["tool_calls"][0]["id"] == "call_1"


def test_a_turn_without_tool_calls_keeps_no_state() -> None:
    """DeepSeek ignores the reasoning of a plain turn: it is not carried (nor sent) at all."""
    message = {"role": "assistant", "content": "4", "reasoning_content": "2+2."}
    script = Script([_json({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})])
    response = script.model("deepseek:deepseek-chat").chat("2+2?")
    assert response.reasoning == "2+2."
    assert response.message.reasoning_state is None


def test_the_tool_loop_carries_the_state_from_step_to_step() -> None:
    done = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "stop"}]}
    script = Script([_json(_deepseek_tool_turn("Call the tool.")), _json(done)])

    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    run = mm.run_tools(script.model("deepseek:deepseek-chat"), "Weather in Oslo?", [weather])
    assert run.response.text == "Sunny."
    assert script.bodies[1]["messages"][1]["reasoning_content"] == "Call the tool."


async def test_gemini_thought_signatures_from_the_recording_go_back_with_the_call(driver: Driver) -> None:
    cassette = _recorded("openai-compatible", "pydantic-ai__test_compatible_api_with_tool_calls_without_id")
    first, second = cassette["interactions"]
    script = Script([_reply(first), _reply(second)])
    model = script.model("gemini:gemini-2.5-pro-preview-05-06")
    tool = {"type": "function", "function": {"name": "get_current_time", "parameters": {"type": "object"}}}
    response = await driver.chat(model, "What is the current time?", tools=[tool])

    # Gemini 2.5 signs the message (Gemini 3 signs each call: the next test).
    recorded = json.loads(first["response"]["body"])["choices"][0]["message"]
    state = response.message.reasoning_state
    assert state is not None
    assert state.fields == {"extra_content": recorded["extra_content"]}
    assert state.call_fields == []

    history = [mm.user("What is the current time?"), response.message, mm.tool_result("", "Noon")]
    assert (await driver.chat(model, history, tools=[tool])).text == "The current time is Noon."
    sent = script.bodies[1]["messages"][1]
    assert sent["extra_content"] == recorded["extra_content"]
    assert "extra_content" not in sent["tool_calls"][0]


async def test_gemini_signatures_on_each_streamed_call_go_back_with_that_call(driver: Driver) -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"model": "gemini-3-pro-preview", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def call(index: int, city: str, signature: str | None) -> dict[str, Any]:
        extra = {"extra_content": {"google": {"thought_signature": signature}}} if signature else {}
        function = {"name": "weather", "arguments": json.dumps({"city": city})}
        return {"index": index, "id": f"c{index}", "type": "function", "function": function, **extra}

    # Parallel calls: only the first of a step is signed.
    chunks = [chunk({"role": "assistant", "tool_calls": [call(0, "Oslo", "sig-A"), call(1, "Rome", None)]})]
    done = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Both sunny."}}]}
    script = Script([_sse([*chunks, chunk({}, "tool_calls")]), _json(done)])
    model = script.model("gemini:gemini-3-pro-preview")
    response = (await driver.events(model, "Oslo and Rome?", tools=[WEATHER]))[1]
    assert [c.arguments for c in response.tool_calls] == [{"city": "Oslo"}, {"city": "Rome"}]

    results = [mm.tool_result("c0", "sunny"), mm.tool_result("c1", "sunny")]
    await driver.chat(model, [mm.user("Oslo and Rome?"), response.message, *results], tools=[WEATHER])
    sent = script.bodies[1]["messages"][1]["tool_calls"]
    assert sent[0]["extra_content"] == {"google": {"thought_signature": "sig-A"}}
    assert "extra_content" not in sent[1]


async def test_openrouter_reasoning_details_streamed_in_pieces_come_back_whole(driver: Driver) -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"model": "anthropic/claude-sonnet-4.5", "choices": [choice]}

    def detail(**fields: Any) -> dict[str, Any]:
        entry = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0, **fields}
        return {"reasoning_details": [entry]}

    call = {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    chunks = [
        chunk({"role": "assistant", "reasoning": "Use ", **detail(text="Use ", signature="")}),
        chunk({"reasoning": "the tool.", **detail(text="the tool.")}),
        chunk(detail(signature="EugC-signed")),
        chunk({"tool_calls": [call]}),
        chunk({}, "tool_calls"),
    ]
    script = Script([_sse(chunks)])
    response = (await driver.events(script.model("openrouter:anthropic/claude-sonnet-4.5"), "hi", tools=[WEATHER]))[1]
    state = response.message.reasoning_state
    assert state is not None
    assert state.fields == {
        "reasoning_details": [
            {
                "type": "reasoning.text",
                "format": "anthropic-claude-v1",
                "index": 0,
                "text": "Use the tool.",
                "signature": "EugC-signed",
            }
        ]
    }


# ------------------------------------------------------------------------ the type itself


def test_the_state_survives_json_and_plain_dicts() -> None:
    state = mm.ReasoningState(origin="deepseek:deepseek-chat@api.deepseek.com", fields={"reasoning_content": "x"})
    turn = mm.Message(role="assistant", tool_calls=[mm.ToolCall(id="c", name="f")], reasoning_state=state)
    assert mm.Message.model_validate_json(turn.model_dump_json()) == turn
    assert mm.Message.model_validate(turn.model_dump()).reasoning_state == state
    assert "reasoning_state" not in repr(turn)  # opaque and often large: kept out of logs


def test_a_profile_names_only_known_state() -> None:
    with pytest.raises(mm.ConfigurationError, match="unknown reasoning_echo value"):
        mm.model("openai:gpt-4o", api_key=CANARY_KEY, profile={"reasoning_echo": ["thinking_blocks"]})


def test_the_openai_model_has_no_chat_echo_by_default() -> None:
    assert OpenAIModel("gpt-5-mini", api_key=CANARY_KEY).profile.reasoning_echo == frozenset()
