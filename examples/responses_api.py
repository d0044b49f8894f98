"""The OpenAI Responses API as a second wire protocol: same responses, events and errors.

Shows `api="responses"` on a model, a streamed answer with a tool call, a truncated answer
(``status: "incomplete"`` → ``finish_reason == "length"``), and a chain that falls back from a
Responses model to a Chat Completions model with the same response shape. It runs offline,
against `modelmix.testing.FakeOpenAIServer` on 127.0.0.1 (which serves both protocols):

    python examples/responses_api.py

Against OpenAI, drop the fake server and set OPENAI_API_KEY.
"""

from __future__ import annotations

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply


def main() -> None:
    weather = FakeReply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    replies = [FakeReply("Paris."), weather, FakeReply("Once upon a", finish_reason="length")]
    with FakeOpenAIServer(replies) as server:
        model = mm.model("openai:gpt-5-mini", base_url=server.base_url, api_key="sk-test", api="responses")

        # 1. A plain call: the same ChatResponse Chat Completions gives.
        answer = model.chat([mm.system("Be brief."), mm.user("What is the capital of France?")])
        tokens = answer.usage.total_tokens if answer.usage else 0
        print(f"answer: {answer.text} (finish: {answer.finish_reason}, usage: {tokens} tokens)")
        sent = server.requests[-1]
        print(f"sent to /responses: instructions={sent['instructions']!r}, store={sent['store']}")

        # 2. A stream whose answer is a tool call: arguments arrive as ToolCallDelta fragments.
        def get_weather(city: str) -> str:
            """The weather in a city."""
            return "sunny"

        with model.stream("Weather in Paris?", tools=[get_weather]) as stream:
            kinds = [type(event).__name__ for event in stream]
        call = stream.response.tool_calls[0]
        print(f"streamed events: {', '.join(dict.fromkeys(kinds))}")
        print(f"tool call: {call.name}({call.arguments}) finish: {stream.response.finish_reason}")

        # 3. A truncated answer is never a plain success.
        cut = model.chat("Tell me a long story.")
        print(f"truncated: {cut.text!r} finish: {cut.finish_reason}")

    # 4. A chain mixing the protocols: the Responses model is down, Chat Completions answers.
    with FakeOpenAIServer(FakeReply("unavailable", status=503)) as down, FakeOpenAIServer("Rome.") as up:
        chain = mm.fallback(
            mm.model("openai:gpt-5-mini", base_url=down.base_url, api_key="sk-test", api="responses", max_retries=0),
            mm.model("openai:gpt-4o-mini", base_url=up.base_url, api_key="sk-test"),
        )
        response = chain.chat("What is the capital of Italy?")
        tried = ", ".join(f"{a.model}: {a.error or 'ok'}" for a in response.attempts)
        print(f"chain answer: {response.text} (tried {tried})")


if __name__ == "__main__":
    main()
