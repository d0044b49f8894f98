"""The tool loop: `mm.run_tools` calls the model, runs the Python functions it asks for, sends
the results back and stops at the answer — with every step visible on the result.

Runs offline: the model is a `modelmix.testing.FunctionModel` scripted like a real one (it asks for
the weather in two cities at once, then answers from the tool results). Replace it with
``mm.model("openai:gpt-4o-mini")`` (or any other model) to run against a real backend.

    python examples/tool_loop.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from pydantic import Field

import modelmix as mm
from modelmix.testing import FakeReply, FunctionModel

FORECASTS = {"Paris": ("sunny", 18), "Oslo": ("snow", -3)}


def get_weather(city: str, days: Annotated[int, Field(ge=1, le=7)] = 1) -> dict[str, Any]:
    """Current weather in a city (stand-in for a real weather API)."""
    if city not in FORECASTS:
        raise LookupError(f"no forecast for {city}")
    sky, temperature = FORECASTS[city]
    return {"city": city, "sky": sky, "temperature_c": temperature, "days": days}


async def local_time(city: str) -> str:
    """Local time in a city (an async tool: arun_tools runs it alongside the others)."""
    await asyncio.sleep(0.01)
    return {"Paris": "14:05", "Oslo": "14:05"}.get(city, "unknown")


def scripted_model(messages: list[mm.Message], settings: Any) -> FakeReply:
    """Plays the model: first asks for tools, then answers from their results."""
    results = [message for message in messages if message.role == "tool"]
    if not results:
        return FakeReply(
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {"name": "local_time", "arguments": {"city": "Oslo"}},
            ],
            input_tokens=40,
            output_tokens=12,
        )
    weather = [json.loads(message.text) for message in results if message.text.startswith("{")]
    summary = ", ".join(f"{w['city']}: {w['sky']} {w['temperature_c']} °C" for w in weather)
    return FakeReply(f"{summary}; it is {results[-1].text} in Oslo.", input_tokens=90, output_tokens=20)


def main() -> None:
    model = FunctionModel(scripted_model)
    tools = [get_weather, local_time]

    run = mm.run_tools(model, "Weather in Paris and Oslo, and the time in Oslo?", tools, max_steps=4)
    for number, step in enumerate(run.steps, start=1):
        for outcome in step.outcomes:
            status = "ok" if outcome.ok else "error"
            print(f"step {number}: {outcome.call.name}({outcome.call.arguments}) -> {status}: {outcome.content}")
    print("answer:", run.text)
    print(f"{len(run.steps)} model calls, {len(run.messages)} messages, usage: {run.usage}")

    # The same loop from async code: the three calls of the first step run concurrently.
    async_run = asyncio.run(mm.arun_tools(model, "Weather in Paris and Oslo?", tools))
    print("async answer:", async_run.text)

    # A model that never stops calling tools hits the step limit.
    stubborn = FunctionModel(FakeReply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
    try:
        mm.run_tools(stubborn, "Weather in Rome?", tools, max_steps=2)
    except mm.ToolLoopLimitError as error:
        print(f"limit: {len(error.steps)} steps; the tool said: {error.messages[2].text}")


if __name__ == "__main__":
    main()
