"""Content parts and a pydantic ``response_format`` against the real llama.cpp server
(llama-cpp-python's ``python -m llama_cpp.server``), sync, async and streamed.

Before, both were answered with a 500: the server concatenates a message's content as a string,
and it validates ``response_format.type`` as ``"text"`` or ``"json_object"`` only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

import modelmix as mm
from modelmix.providers.openai_compatible import OpenAICompatibleModel

from .conftest import LlamaServer

GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 1}
TEXT_PARTS = [{"type": "text", "text": "Say hello"}, {"type": "text", "text": "to Ada."}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
async def server_model(llama_server: LlamaServer) -> AsyncIterator[OpenAICompatibleModel]:
    model = mm.model("llamacpp:smollm2", base_url=llama_server.base_url, max_retries=0)
    assert isinstance(model, OpenAICompatibleModel)
    yield model
    await model.aclose()


async def _chat(model: OpenAICompatibleModel, mode: str, messages: Any, **settings: Any) -> str:
    if mode == "sync":
        return model.chat(messages, **settings).text
    if mode == "async":
        return (await model.achat(messages, **settings)).text
    if mode == "stream":
        with model.stream(messages, **settings) as stream:
            return "".join(stream.text_deltas())
    async with model.astream(messages, **settings) as astream:
        return "".join([delta async for delta in astream.text_deltas()])


MODES = ["sync", "async", "stream", "astream"]


@pytest.mark.parametrize("mode", MODES)
async def test_text_parts_are_answered(server_model: OpenAICompatibleModel, mode: str) -> None:
    text = await _chat(server_model, mode, [{"role": "user", "content": TEXT_PARTS}], max_tokens=6, **GREEDY)
    assert text.strip()
    text = await _chat(server_model, mode, [mm.user("Say hello", "to Ada.")], max_tokens=6, **GREEDY)
    assert text.strip()


@pytest.mark.parametrize("mode", MODES)
async def test_pydantic_response_format_is_enforced(server_model: OpenAICompatibleModel, mode: str) -> None:
    # 135M parameters won't write this shape unprompted: an answer that validates shows the
    # server enforced the schema it was sent.
    text = await _chat(server_model, mode, "Describe Ada.", response_format=Person, max_tokens=40, **GREEDY)
    person = Person.model_validate_json(text)
    assert isinstance(person.age, int)


async def test_openai_json_schema_mapping_is_enforced(server_model: OpenAICompatibleModel) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "N", "schema": schema}}
    response = server_model.chat("Pick a number.", response_format=fmt, max_tokens=20, **GREEDY)
    assert isinstance(json.loads(response.text)["n"], int)
