"""`count_tokens` on real local models: the in-process model's own template and tokenizer (exact,
checked against the prompt tokens llama.cpp reports), and a real llama.cpp server's tokenizer."""

from __future__ import annotations

from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.local import LocalModel
from modelmix.tokens import acount_tokens, count_tokens

from .conftest import LlamaServer, needs_llama

pytestmark = needs_llama

WEATHER = mm.Tool(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CONVERSATIONS: list[tuple[str, Any, list[mm.Tool]]] = [
    ("one turn", "Say hi", []),
    ("system and user", [mm.system("You are terse."), mm.user("Name three colours.")], []),
    ("with a tool", "What is the weather in Paris?", [WEATHER]),
]


@pytest.fixture(scope="module")
def local() -> LocalModel:
    model = LocalModel()
    model.load()
    return model


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("label", "messages", "tools"), CONVERSATIONS, ids=[c[0] for c in CONVERSATIONS])
async def test_in_process_count_is_the_prompt_llama_cpp_evaluates(
    local: LocalModel, mode: str, label: str, messages: Any, tools: list[mm.Tool]
) -> None:
    if mode == "sync":
        counted = count_tokens(messages, model=local, tools=tools or None)
    else:
        counted = await acount_tokens(messages, model=local, tools=tools or None)
    assert counted.method == "local-model"
    assert counted.exact, counted.note
    settings: dict[str, Any] = {"max_tokens": 2, "temperature": 0.0, "seed": 1}
    if tools:
        settings["tools"] = tools
    response = local.chat(messages, **settings)
    assert response.usage is not None
    assert not response.usage.estimated
    assert counted.tokens == response.usage.input_tokens, label


async def test_server_tokenizer_counts_the_text_as_the_model_does(llama_server: LlamaServer, local: LocalModel) -> None:
    text = "Tokenizers split words like internationalization into pieces."
    async with mm.model("llamacpp:smollm2", base_url=llama_server.base_url, max_retries=0) as model:
        counted = count_tokens(text, model=model)
        assert counted.method == "server-tokenizer"
        assert not counted.exact
        framing = 3 + 4  # the estimated framing of one message
        assert counted.tokens - framing == local.load().count_tokens(text)
        assert await acount_tokens(text, model=model) == counted
