"""`with_attempts` and `copied_with`, the cheap copies every answer goes through, must be
indistinguishable from pydantic's own ``model_copy(update=...)``."""

from __future__ import annotations

from decimal import Decimal

from modelmix import ChatResponse, Message, Usage
from modelmix._response import Attempt, copied_with, with_attempts


def _answer() -> ChatResponse:
    return ChatResponse(
        message=Message(role="assistant", content="hi"),
        provider="openai",
        model="gpt-4o-mini",
        usage=Usage(input_tokens=3, output_tokens=1),
        cost=Decimal("0.000001"),
        request_id="req-1",
        raw={"id": "x"},
    )


def test_with_attempts_equals_model_copy() -> None:
    answer = _answer()
    attempts = [Attempt(model="gpt-4o-mini", provider="openai", elapsed=0.25)]
    ours, pydantics = with_attempts(answer, attempts), answer.model_copy(update={"attempts": attempts})
    assert ours == pydantics
    assert ours.model_dump() == pydantics.model_dump()
    assert ours.model_fields_set == pydantics.model_fields_set
    assert ours.model_dump_json(exclude_unset=True) == pydantics.model_dump_json(exclude_unset=True)
    assert hash(ours.attempts[0]) == hash(pydantics.attempts[0])
    assert type(ours) is ChatResponse


def test_with_attempts_leaves_the_original_alone() -> None:
    answer = _answer()
    copied = with_attempts(answer, [Attempt(model="m", provider="p")])
    assert answer.attempts == []
    assert "attempts" not in answer.model_fields_set
    assert copied.__dict__ is not answer.__dict__
    assert copied.model_fields_set is not answer.model_fields_set


def test_with_attempts_keeps_a_subclass() -> None:
    class Tagged(ChatResponse):
        pass

    tagged = Tagged(message=Message(role="assistant", content="x"), provider="p")
    copied = with_attempts(tagged, [])
    assert type(copied) is Tagged
    assert copied == tagged.model_copy(update={"attempts": []})


def test_copied_with_equals_model_copy() -> None:
    answer = _answer().model_copy(update={"request_id": None})
    update = {"provider": "vllm", "request_id": "req-2", "latency": 0.5, "cost": Decimal("0.25")}
    ours, pydantics = copied_with(answer, update), answer.model_copy(update=update)
    assert ours == pydantics
    assert ours.model_fields_set == pydantics.model_fields_set
    assert ours.model_dump_json(exclude_unset=True) == pydantics.model_dump_json(exclude_unset=True)
    assert answer.request_id is None
    assert answer.provider == "openai"
