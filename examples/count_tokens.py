"""Count a request's tokens before sending it — offline, no key, nothing downloaded.

Shows the exact tiktoken count of an OpenAI request (messages and a tool), what an Azure
deployment and an unknown model get, and your own tokenizer.
"""

from __future__ import annotations

import asyncio

import modelmix as mm
from modelmix.tokens import acount_tokens, count_tokens


def get_weather(city: str, unit: str = "c") -> str:
    """Current weather in a city."""
    return f"18 °{unit.upper()} in {city}"


def main() -> None:
    conversation = [mm.system("You answer in one sentence."), mm.user("What's the weather in Paris?")]

    plain = count_tokens(conversation, model="gpt-4o-mini")
    with_tool = count_tokens(conversation, model="gpt-4o-mini", tools=[get_weather])
    print(f"gpt-4o-mini: {plain.tokens} tokens ({plain.encoding}, exact={plain.exact})")
    print(f"with the get_weather tool: {with_tool.tokens} tokens")
    print(f"gpt-4 (cl100k_base): {count_tokens(conversation, model='gpt-4').tokens} tokens")

    estimate = count_tokens(conversation, model="ollama:llama3.1")
    print(f"ollama:llama3.1: about {estimate.tokens} tokens (exact={estimate.exact}: {estimate.note})")

    words = count_tokens(conversation, model="my-model", tokenizer=lambda text: len(text.split()))
    print(f"your tokenizer: {words.tokens} tokens ({words.method})")

    counted = asyncio.run(acount_tokens("hello world", model="gpt-4.1"))
    print(f"async: 'hello world' is {counted.tokens} prompt tokens on gpt-4.1")


if __name__ == "__main__":
    main()
