"""Tools: let the model call your Python functions, then answer with their results.

Shows describing tools with `mm.Tool` (a JSON schema for the arguments), reading the parsed
`response.tool_calls`, sending results back with `mm.tool_result(...)`, and looping until the
model answers in text (with a step limit, so a confused model cannot loop forever).

    export OPENAI_API_KEY=sk-...
    python examples/tools.py
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import modelmix as mm


def get_weather(city: str) -> dict[str, Any]:
    """Stand-in for a real weather API."""
    return {"city": city, "temperature_c": 18, "sky": "sunny"}


def get_time(city: str) -> dict[str, Any]:
    """Stand-in for a real time-zone lookup."""
    return {"city": city, "local_time": "14:05"}


CITY_ARGUMENT = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [
    mm.Tool(name="get_weather", description="Current weather in a city.", parameters=CITY_ARGUMENT),
    mm.Tool(name="get_time", description="Current local time in a city.", parameters=CITY_ARGUMENT),
]
FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {"get_weather": get_weather, "get_time": get_time}


def run_tool(call: mm.ToolCall) -> dict[str, Any]:
    function = FUNCTIONS.get(call.name)
    if function is None:
        return {"error": f"unknown tool {call.name!r}"}
    if call.arguments_error is not None:
        return {"error": f"bad arguments: {call.arguments_error}"}
    return function(**call.arguments)


def ask(model: mm.Model, question: str, *, max_steps: int = 5) -> str:
    conversation: list[mm.Message] = [mm.system("Use the tools to answer."), mm.user(question)]
    for _ in range(max_steps):
        response = model.chat(conversation, tools=TOOLS)
        if not response.tool_calls:
            return response.text
        conversation.append(response.message)  # the assistant turn that asked for the calls
        for call in response.tool_calls:
            result = run_tool(call)
            print(f"  tool {call.name}({call.arguments}) -> {result}")
            conversation.append(mm.tool_result(call.id, result))
    raise RuntimeError(f"no answer after {max_steps} steps")


def main() -> None:
    with mm.model("openai:gpt-4o-mini") as model:
        question = "What's the weather like in Paris right now?"
        print("question:", question)
        print("answer:", ask(model, question))


if __name__ == "__main__":
    main()
