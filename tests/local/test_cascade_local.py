"""A cascade of the embedded model in front of a real llama.cpp server (short prompts, few tokens)."""

from __future__ import annotations

from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.local import LocalModel
from modelmix.resilience._cascade import CascadeResponse, cascade

from .conftest import LlamaServer, needs_llama

pytestmark = needs_llama
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 1, "max_tokens": 8}


@pytest.fixture(scope="module")
def embedded() -> LocalModel:
    model = LocalModel()
    model.load()
    return model


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_embedded_model_answers_first_and_escalates_to_the_server(
    embedded: LocalModel, llama_server: LlamaServer, mode: str
) -> None:
    server = mm.model("llamacpp:smollm2", base_url=llama_server.base_url, max_retries=0)
    seen: list[str] = []

    def accept(response: mm.ChatResponse) -> bool:
        seen.append(response.provider)
        return response.provider != "local"  # turn the embedded answer down: the server must answer

    model = cascade(embedded, server, accept=accept)
    response = model.chat("Say hello.", **GREEDY) if mode == "sync" else await model.achat("Say hello.", **GREEDY)

    assert isinstance(response, CascadeResponse)
    assert (response.tier, response.provider, response.accepted) == (1, "llamacpp", True)
    assert seen == ["local", "llamacpp"]
    assert [(a.provider, a.error) for a in response.attempts] == [("local", "NotAccepted"), ("llamacpp", None)]
    assert response.text.strip()
    assert response.usage is not None
    assert response.usage.output_tokens <= 16

    kept = await cascade(embedded, server, accept=lambda r: bool(r.text.strip())).achat("Say hello.", **GREEDY)
    assert (kept.tier, kept.provider) == (0, "local")
    assert kept.answer_cost == 0  # the embedded model costs nothing per token
    await server.aclose()
