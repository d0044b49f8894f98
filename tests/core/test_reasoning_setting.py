"""``reasoning=``: one setting, sent the way each backend takes it, refused before sending where
the model's profile has no reasoning control."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm


def _capture(provider: str, model: str, **options: Any) -> tuple[mm.Model, list[dict[str, Any]]]:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if request.url.path.endswith("/api/chat"):
            return httpx.Response(
                200, json={"model": model, "message": {"role": "assistant", "content": "ok"}, "done": True}
            )
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            },
        )

    client = httpx.Client(transport=httpx.MockTransport(answer))
    made = mm.model(f"{provider}:{model}", api_key="sk-test", http_client=client, max_retries=0, **options)
    return made, bodies


@pytest.mark.parametrize(
    ("level", "field"),
    [("high", "high"), ("low", "low"), ("minimal", "minimal"), ("off", "none")],
)
def test_openai_reasoning_models_get_reasoning_effort(level: str, field: str) -> None:
    model, bodies = _capture("openai", "o4-mini")
    model.chat("hi", reasoning=level)  # type: ignore[arg-type]
    assert bodies[-1]["reasoning_effort"] == field


def test_ollama_gets_its_think_switch() -> None:
    model, bodies = _capture("ollama", "qwen3", base_url="http://127.0.0.1:11434", profile={"reasoning": "think"})
    model.chat("hi", reasoning="high")
    model.chat("hi", reasoning="off")
    assert [body["think"] for body in bodies] == [True, False]


def test_openrouter_gets_a_reasoning_object() -> None:
    model, bodies = _capture("openrouter", "deepseek/deepseek-r1")
    model.chat("hi", reasoning="medium")
    model.chat("hi", reasoning="off")
    assert [body["reasoning"] for body in bodies] == [{"effort": "medium"}, {"enabled": False}]


def test_a_model_without_a_reasoning_control_refuses_a_level_before_sending() -> None:
    model, bodies = _capture("openai", "gpt-4o-mini")
    with pytest.raises(mm.UnsupportedCapabilityError) as caught:
        model.chat("hi", reasoning="high")
    assert caught.value.capability == "reasoning"
    assert caught.value.param == "reasoning"
    assert "reasoning='high'" in str(caught.value)
    assert bodies == []  # nothing was sent


def test_off_on_a_model_that_does_not_reason_sends_nothing_extra() -> None:
    model, bodies = _capture("openai", "gpt-4o-mini")
    model.chat("hi", reasoning="off")
    assert "reasoning_effort" not in bodies[-1]
    assert "reasoning" not in bodies[-1]


def test_extra_body_still_has_the_last_word() -> None:
    model, bodies = _capture("openai", "o4-mini")
    model.chat("hi", reasoning="low", extra_body={"reasoning_effort": "high"})
    assert bodies[-1]["reasoning_effort"] == "high"


def test_an_unknown_level_is_a_configuration_error() -> None:
    model, bodies = _capture("openai", "o4-mini")
    with pytest.raises(mm.ConfigurationError, match="reasoning"):
        model.chat("hi", reasoning="extreme")  # type: ignore[arg-type]
    assert bodies == []


def test_a_chain_moves_past_a_member_that_cannot_take_the_level() -> None:
    plain, plain_bodies = _capture("openai", "gpt-4o-mini")
    thinker, thinker_bodies = _capture("openai", "o4-mini")
    chain = mm.fallback(plain, thinker)
    assert chain.chat("hi", reasoning="high").text == "ok"
    assert plain_bodies == []
    assert thinker_bodies[-1]["reasoning_effort"] == "high"


def test_the_responses_api_gets_its_reasoning_object() -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "id": "resp_1",
                "object": "response",
                "status": "completed",
                "model": "o4-mini",
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                    }
                ],
            },
        )

    client = httpx.Client(transport=httpx.MockTransport(answer))
    model = mm.model("openai:o4-mini", api_key="sk-test", http_client=client, max_retries=0, api="responses")
    assert model.chat("hi", reasoning="high").text == "ok"
    model.chat("hi", reasoning="off")
    assert [body["reasoning"] for body in bodies] == [{"effort": "high"}, {"effort": "none"}]


@pytest.mark.parametrize("provider", ["vllm", "llamacpp"])
def test_qwen3_on_vllm_and_llama_cpp_gets_the_templates_thinking_switch(provider: str) -> None:
    model, bodies = _capture(provider, "Qwen/Qwen3-8B")
    model.chat("hi", reasoning="off")
    model.chat("hi", reasoning="high")
    assert [body["chat_template_kwargs"] for body in bodies] == [{"enable_thinking": False}, {"enable_thinking": True}]


def test_gpt_oss_on_vllm_gets_reasoning_effort() -> None:
    model, bodies = _capture("vllm", "openai/gpt-oss-20b")
    model.chat("hi", reasoning="low")
    assert bodies[-1]["reasoning_effort"] == "low"


def test_other_open_weight_models_refuse_a_level() -> None:
    model, bodies = _capture("vllm", "meta-llama/Llama-3.1-8B-Instruct")
    with pytest.raises(mm.UnsupportedCapabilityError):
        model.chat("hi", reasoning="low")
    assert bodies == []
