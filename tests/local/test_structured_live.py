"""Structured output and the tool loop on real local models, no mocks: llama-cpp-python's server
(``llamacpp:``) and the in-process embedded model (``local:``), both SmolLM2-135M-Instruct.

Both profiles choose the ``native`` strategy: llama.cpp turns the JSON schema into a grammar, so
even a model this small can only write an answer of the right shape. The tests check types and
validity, never what the model chose to write.

SmolLM2 does not call tools on its own (its chat template does not even show them). A named
``tool_choice`` makes llama-cpp-python constrain that call with a grammar built from the tool's
parameters, so the first step of the loop is a valid call; the loop drops the forcing choice
after that, and the model answers in text.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

import modelmix as mm

from .conftest import LlamaServer, needs_llama

pytestmark = needs_llama

GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 1}
PROMPT = "Ada ordered 2 apples. Give the order."
# The schema's grammar ends the answer; this is room for it, and a stop for a runaway string.
OUTPUT_TOKENS = 96


class Status(str, enum.Enum):
    pending = "pending"
    shipped = "shipped"


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    customer: str
    items: list[Item]
    status: Status


@pytest.fixture(params=["llamacpp", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend's name and, for the server, its URL: the server is started only when asked
    for, so the in-process half runs where the server's extra is missing."""
    if request.param == "local":
        return "local"
    server: LlamaServer = request.getfixturevalue("llama_server")
    return server.base_url


@pytest.fixture
async def model(backend: str) -> AsyncIterator[mm.Model]:
    if backend == "local":
        from modelmix.providers.local import LocalModel

        yield LocalModel()  # every LocalModel shares the one loaded copy
        return
    remote = mm.model("llamacpp:smollm2", base_url=backend, max_retries=0)
    yield remote
    await remote.aclose()


def _check_order(response: mm.ChatResponse) -> None:
    order = response.output
    assert isinstance(order, Order)
    assert isinstance(order.customer, str)
    assert all(isinstance(item, Item) and isinstance(item.quantity, int) for item in order.items)
    assert isinstance(order.status, Status)
    # What came back is the JSON the model wrote, and it validates on its own.
    assert Order.model_validate_json(response.text) == order


async def test_the_strategy_is_native_on_both(model: mm.Model) -> None:
    from modelmix._structured import choose_strategy

    assert choose_strategy(model.profile) == "native"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_nested_model_comes_back_validated(model: mm.Model, mode: str) -> None:
    settings: dict[str, Any] = {"output": Order, "max_tokens": OUTPUT_TOKENS, **GREEDY}
    response = model.chat(PROMPT, **settings) if mode == "sync" else await model.achat(PROMPT, **settings)
    assert response.finish_reason == "stop"
    _check_order(response)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_streamed_nested_model_grows_then_validates(model: mm.Model, mode: str) -> None:
    settings: dict[str, Any] = {"output": Order, "max_tokens": OUTPUT_TOKENS, **GREEDY}
    if mode == "sync":
        with model.stream(PROMPT, **settings) as stream:
            events = list(stream)
        response = stream.response
    else:
        async with model.astream(PROMPT, **settings) as astream:
            events = [event async for event in astream]
        response = astream.response
    partials = [event.value for event in events if isinstance(event, mm.PartialOutput)]
    assert len(partials) >= 2, "the value should grow as the JSON arrives"
    assert all(isinstance(value, dict) for value in partials)
    _check_order(response)
    assert partials[-1] == response.output.model_dump(mode="json")


async def test_the_forced_tool_strategy_is_grammar_constrained_too(model: mm.Model) -> None:
    # The fallback for backends without a schema constraint: a forced call of the output tool.
    # llama.cpp builds the same kind of grammar from the tool's parameters.
    settings: dict[str, Any] = {"output": Order, "output_strategy": "tool", "max_tokens": OUTPUT_TOKENS, **GREEDY}
    with model.stream(PROMPT, **settings) as stream:
        values = list(stream.outputs())  # partial values follow the call's argument fragments
    assert [call.name for call in stream.response.tool_calls] == ["final_result"]
    assert len(values) >= 2
    assert all(isinstance(value, dict) for value in values[:-1])
    assert isinstance(values[-1], Order)


async def test_an_answer_cut_by_max_tokens_is_a_typed_error_after_the_reasks(model: mm.Model) -> None:
    with pytest.raises(mm.OutputValidationError) as caught:
        await model.achat(PROMPT, output=Order, output_retries=1, max_tokens=6, **GREEDY)
    error = caught.value
    assert error.strategy == "native"
    assert error.raw_text.lstrip().startswith("{")
    assert "max_tokens" in error.message
    assert error.usage is not None
    assert error.usage.output_tokens == 12, "two attempts of 6 tokens each"


async def test_a_chain_falls_back_from_a_dead_server_to_the_in_process_model() -> None:
    from modelmix.providers.local import LocalModel

    from .conftest import free_port

    dead = mm.model("llamacpp:smollm2", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    try:
        response = await mm.fallback(dead, LocalModel()).achat(PROMPT, output=Order, max_tokens=OUTPUT_TOKENS, **GREEDY)
    finally:
        await dead.aclose()
    _check_order(response)
    assert [(attempt.provider, attempt.error) for attempt in response.attempts] == [
        ("llamacpp", "TransportError"),
        ("local", None),
    ]


class Adder:
    """A real tool: adds, and remembers each call (the loop may run it in a worker thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def add(self, a: int, b: int) -> int:
        """Add two whole numbers."""
        with self._lock:
            self.calls.append((a, b))
        return a + b


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_tool_loop_with_a_forced_first_call_completes(model: mm.Model, mode: str) -> None:
    adder = Adder()
    prompt = "What is 2 plus 3? Use the add tool."
    settings: dict[str, Any] = {"tool_choice": adder.add, "max_tokens": 40, "max_steps": 3, **GREEDY}
    run = (
        mm.run_tools(model, prompt, [adder.add], **settings)
        if mode == "sync"
        else await mm.arun_tools(model, prompt, [adder.add], **settings)
    )
    first, last = run.steps[0], run.steps[-1]
    assert first.response.finish_reason == "tool_calls"
    [call] = first.calls
    assert call.name == "add"
    assert call.arguments_error is None
    # The grammar made the arguments valid: the function ran with two integers.
    assert len(adder.calls) == 1
    a, b = adder.calls[0]
    assert type(a) is int
    assert type(b) is int
    [outcome] = first.outcomes
    assert outcome.ok, outcome.content
    assert outcome.content == str(a + b)
    # Then the forcing choice was dropped and the model answered.
    assert len(run.steps) == 2
    assert not last.calls
    assert last.response.finish_reason in ("stop", "length")
    assert run.text.strip()
    assert [m.role for m in run.messages] == ["user", "assistant", "tool", "assistant"]


async def test_a_tool_loop_ending_in_a_validated_nested_model(model: mm.Model) -> None:
    adder = Adder()
    # llama-cpp-python 0.3.36 does not always keep to the schema's grammar, even sampling
    # greedily: on some CPUs (seen 2026-12-01) this very answer breaks it, on others not. A
    # broken answer is caught (OutputValidationError, enforced=True) and the documented remedy is
    # one re-ask with the validation errors, which this loop then must carry through.
    run = await mm.arun_tools(
        model,
        "Ada ordered 2 plus 3 apples. Add them, then give the order.",
        [adder.add],
        tool_choice=adder.add,
        output=Order,
        output_retries=1,
        max_tokens=OUTPUT_TOKENS,
        max_steps=3,
        **GREEDY,
    )
    assert len(adder.calls) == 1
    assert run.steps[0].outcomes[0].ok
    assert len(run.steps) == 2
    _check_order(run.response)


async def test_required_with_one_tool_is_enforced_in_process() -> None:
    # llama-cpp-python constrains only a named tool_choice; "required" was left to the model,
    # and SmolLM2 answered "2 + 3 = 5" in text, so the loop ended without running the tool.
    from modelmix.providers.local import LocalModel

    adder = Adder()
    run = mm.run_tools(
        LocalModel(), "What is 2 plus 3?", [adder.add], tool_choice="required", max_tokens=40, max_steps=3, **GREEDY
    )
    assert len(adder.calls) == 1
    assert run.steps[0].response.finish_reason == "tool_calls"
    assert len(run.steps) == 2


async def test_required_among_several_tools_is_refused_in_process() -> None:
    from modelmix.providers.local import LocalModel

    def subtract(a: int, b: int) -> int:
        """Subtract b from a."""
        return a - b

    with pytest.raises(mm.UnsupportedCapabilityError, match="tool_choice") as caught:
        LocalModel().chat("What is 2 plus 3?", tools=[Adder().add, subtract], tool_choice="required", max_tokens=8)
    assert caught.value.param == "tool_choice"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="llama-cpp-python's server accepts tool_choice='required' but does not constrain the call "
    "(its template handler builds a grammar only for a named tool); SmolLM2 answers '2 + 3 = 5' in "
    "text. The llamacpp profile still lists 'required': it also describes llama.cpp's own llama-server, "
    "which enforces 'required' and (per upstream reports) ignores a named choice instead",
)
async def test_required_is_enforced_by_the_llama_cpp_python_server(llama_server: LlamaServer) -> None:
    remote = mm.model("llamacpp:smollm2", base_url=llama_server.base_url, max_retries=0)
    adder = Adder()
    try:
        mm.run_tools(remote, "What is 2 plus 3?", [adder.add], tool_choice="required", max_tokens=40, **GREEDY)
    finally:
        await remote.aclose()
    assert len(adder.calls) == 1
