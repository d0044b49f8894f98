"""Clouds: the same question to Mistral, DeepSeek, Groq, OpenRouter, Together, Gemini, Vertex AI,
Databricks and Bedrock, and a fallback chain across clouds.

Every preset is pointed with base_url= at a local fake OpenAI-compatible server, so this runs
offline and with no key; in real use leave base_url out and set each cloud's key variable
(MISTRAL_API_KEY, GROQ_API_KEY, GEMINI_API_KEY, DATABRICKS_HOST + DATABRICKS_TOKEN,
AWS_REGION + AWS_BEARER_TOKEN_BEDROCK, ... see docs/clouds.md).

    python examples/clouds.py
"""

from __future__ import annotations

from typing import Any

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply

KEY = "demo-key"


def answer(request: dict[str, Any]) -> str | FakeReply:
    """The fake's answers: a rate limit for one model (to show a fallback), else who was asked."""
    if request["model"] == "busy-model":
        return FakeReply(text="Rate limit reached", status=429)
    return f"Paris (answered as {request['model']})"


def main() -> None:
    with FakeOpenAIServer(reply=answer, api_key=KEY) as server:
        # What each prefix needs besides a key: the address of the fake instead of the cloud's own.
        options: dict[str, dict[str, Any]] = {
            "mistral:mistral-small-latest": {"base_url": server.base_url},
            "deepseek:deepseek-chat": {"base_url": server.base_url},
            "groq:llama-3.3-70b-versatile": {"base_url": server.base_url},
            "openrouter:anthropic/claude-sonnet-4.5": {"base_url": server.base_url, "app_name": "clouds example"},
            "together:meta-llama/Llama-3.3-70B-Instruct-Turbo": {"base_url": server.base_url},
            "gemini:gemini-2.5-flash": {"base_url": server.base_url},
            "vertex:google/gemini-2.5-flash": {"base_url": server.base_url},
            # A Databricks workspace is given by its host; /serving-endpoints is added.
            "databricks:databricks-meta-llama-3-3-70b-instruct": {"base_url": server.url},
            "bedrock:openai.gpt-oss-120b-1:0": {"base_url": server.base_url},
        }
        for spec, extra in options.items():
            with mm.model(spec, api_key=KEY, **extra) as model:
                response = model.chat("What is the capital of France?")
                print(f"{response.provider:<11} {response.text}")

        # One chain across clouds: the first is rate limited, the next answers.
        chain = mm.fallback(
            mm.model("groq:busy-model", api_key=KEY, base_url=server.base_url, max_retries=0),
            mm.model("mistral:mistral-small-latest", api_key=KEY, base_url=server.base_url, max_retries=0),
        )
        response = chain.chat("What is the capital of France?")
        print(f"fallback chain answered from {response.provider}: {response.text}")
        chain.close()

        listed = mm.list_models("together", base_url=server.base_url, api_key=KEY)
        print("together lists:", ", ".join(model.spec for model in listed))


if __name__ == "__main__":
    main()
