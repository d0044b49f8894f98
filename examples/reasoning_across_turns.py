"""Reasoning that travels with the conversation.

A reasoning model on the Responses API keeps nothing on the server (modelmix sends
``store: false``), so it is asked for its reasoning encrypted; the items come back on the
assistant message (`message.reasoning_state`) and go out again in the next request, to that model
only. The same holds for what DeepSeek, Gemini and OpenRouter want back after a tool call. Keep the
assistant message in your history (the tool loop does) and there is nothing else to do.

This runs offline against modelmix's fake OpenAI server, which answers with fake "encrypted"
reasoning and records what it is sent; point a model at the real API (``mm.model("openai:gpt-5-mini",
api="responses")`` with OPENAI_API_KEY set) and the code is the same.

    python examples/reasoning_across_turns.py
"""

from __future__ import annotations

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply


def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny and 18 °C in {city}"


def main() -> None:
    replies = [
        FakeReply(
            reasoning="The user wants the weather: call the tool.",
            tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
        ),
        FakeReply("It is sunny and 18 °C in Paris."),
    ]
    with FakeOpenAIServer(replies) as server:
        model = mm.model("openai:gpt-5-mini", api="responses", base_url=server.base_url, api_key="sk-fake")
        run = mm.run_tools(model, "What is the weather in Paris?", [get_weather])
        print("answer:", run.response.text)

        thinking = run.steps[0].response
        state = thinking.message.reasoning_state
        assert state is not None
        print("reasoning summary:", thinking.reasoning)
        print(f"kept on the message: {len(state.items)} encrypted item(s) from {state.origin.split('@')[0]}")

        first, second = server.requests
        print("first request asked for:", first["include"])
        sent_back = [item["type"] for item in second["input"] if "type" in item]
        print("second request carried:", sent_back)


if __name__ == "__main__":
    main()
