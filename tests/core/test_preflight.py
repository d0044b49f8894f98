"""The pre-flight context check: a request that cannot fit the window is refused with nothing sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import modelmix as mm
from modelmix._preflight import ContextWindowExceededError, upper_bound
from modelmix.tokens import count_tokens

from ._helpers import Driver, chunk, completion, sse_body, sse_response
from .conftest import MakeModel

WINDOW = 60


class Counting:
    """A handler that answers every request and counts them."""

    def __init__(self, text: str = "Hello!") -> None:
        self.requests: list[httpx.Request] = []
        self.text = text

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if json.loads(request.content).get("stream"):
            return sse_response(sse_body(chunk(self.text), chunk(finish="stop")))
        return httpx.Response(200, json=completion(self.text))


def prompt_of(tokens: int, model: str = "gpt-4o-mini") -> str:
    """A user message that counts exactly `tokens` prompt tokens on `model` (framing included)."""
    for n in range(1, tokens + 1):
        text = " ".join(["apple"] * n)
        if count_tokens(text, model=model).tokens == tokens:
            return text
    raise AssertionError(f"no prompt of {tokens} tokens")


async def run(driver: Driver, model: mm.Model, prompt: str, **settings: Any) -> mm.ChatResponse:
    if driver.mode == "sync":
        return model.chat(prompt, **settings)
    return await model.achat(prompt, **settings)


async def test_a_prompt_one_token_over_the_window_is_refused_with_nothing_sent(
    driver: Driver, make_model: MakeModel
) -> None:
    handler = Counting()
    model = make_model(handler, context_window=WINDOW)
    prompt = prompt_of(WINDOW - 10 + 1)

    with pytest.raises(mm.ContextLengthExceededError) as raised:
        await run(driver, model, prompt, max_tokens=10)

    assert handler.requests == []
    error = raised.value
    assert isinstance(error, ContextWindowExceededError)
    assert (error.limit, error.requested, error.input_tokens, error.output_tokens) == (WINDOW, WINDOW + 1, 51, 10)
    assert error.exact
    assert error.method == "tiktoken"
    assert error.phase == "local"
    assert error.status is None
    assert f"51 prompt tokens (counted exactly, tiktoken) + 10 for the answer (max_tokens) = {WINDOW + 1}" in str(error)
    assert f"context window is {WINDOW}" in str(error)
    assert "nothing was sent" in str(error)


async def test_a_prompt_that_exactly_fills_the_window_is_sent(driver: Driver, make_model: MakeModel) -> None:
    handler = Counting()
    model = make_model(handler, context_window=WINDOW)

    response = await run(driver, model, prompt_of(WINDOW - 10), max_tokens=10)

    assert response.text == "Hello!"
    assert len(handler.requests) == 1


async def test_streams_are_refused_before_sending(driver: Driver, make_model: MakeModel) -> None:
    handler = Counting()
    model = make_model(handler, context_window=WINDOW)
    with pytest.raises(ContextWindowExceededError):
        await _stream(driver, model, WINDOW - 5 + 1)
    assert handler.requests == []


async def _stream(driver: Driver, model: mm.Model, tokens: int) -> None:
    prompt = prompt_of(tokens)
    if driver.mode == "sync":
        with model.stream(prompt, max_tokens=5) as s:
            list(s)
    else:
        async with model.astream(prompt, max_tokens=5) as a:
            [event async for event in a]


async def test_without_max_tokens_the_models_longest_answer_must_fit(driver: Driver, make_model: MakeModel) -> None:
    handler = Counting()
    model = make_model(handler, context_window=WINDOW, profile={"max_output_tokens": 30})

    with pytest.raises(ContextWindowExceededError, match=r"\+ 30 for the answer \(the model's longest answer\)"):
        await run(driver, model, prompt_of(31))
    # max_tokens, when given, is what must fit.
    assert (await run(driver, model, prompt_of(31), max_tokens=20)).text == "Hello!"
    assert len(handler.requests) == 1


async def test_no_known_window_no_check(driver: Driver, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = Counting()
    model = make_model(handler, name="some-unlisted-model")
    assert model.context_window is None
    monkeypatch.setattr("modelmix.tokens._counting.count_tokens", _no_counting)
    monkeypatch.setattr("modelmix.tokens._counting.acount_tokens", _no_counting)

    await run(driver, model, "word " * 5000, max_tokens=100_000)

    assert len(handler.requests) == 1


def _no_counting(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the prompt was tokenized although the cheap bound says it fits")


async def test_an_ordinary_request_is_not_tokenized(
    driver: Driver, make_model: MakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = Counting()
    model = make_model(handler)  # gpt-4o-mini: a 128k window from the catalog
    monkeypatch.setattr("modelmix.tokens._counting.count_tokens", _no_counting)
    monkeypatch.setattr("modelmix.tokens._counting.acount_tokens", _no_counting)

    await run(driver, model, "Summarise: " + "lorem ipsum " * 2_000, max_tokens=1_000)

    assert len(handler.requests) == 1


def test_the_cheap_bound_is_never_below_the_exact_count() -> None:
    texts = ["hello", "naïve café ünïcödé", "日本語のテキスト", "🙂🙃" * 20, "a\nb\tc " * 50, "x" * 1000]
    for text in texts:
        messages = [mm.system("Be brief."), mm.user(text)]
        exact = count_tokens(messages, model="gpt-4o").tokens
        body = json.dumps([{"role": m.role, "content": m.text} for m in messages], ensure_ascii=False)
        assert upper_bound(messages, len(body.encode("utf-8"))) >= exact


async def test_an_estimate_refuses_only_what_cannot_fit_even_if_it_is_high(
    driver: Driver, make_model: MakeModel
) -> None:
    handler = Counting()
    # Not an OpenAI name: counted with the offline estimate.
    model = make_model(handler, name="mystery-model", context_window=1_000)
    near = "word " * 1_100  # estimated a little over the window: sent, the server decides
    far = "word " * 3_000

    await run(driver, model, near)
    with pytest.raises(ContextWindowExceededError, match="estimated, estimate") as raised:
        await run(driver, model, far)

    assert len(handler.requests) == 1
    assert not raised.value.exact


async def test_a_fallback_chain_skips_the_member_whose_window_is_too_small(
    driver: Driver, make_model: MakeModel
) -> None:
    small_handler, large_handler = Counting("small"), Counting("large")
    small = make_model(small_handler, context_window=WINDOW)
    large = make_model(large_handler, name="gpt-4o", context_window=10 * WINDOW)
    chain = mm.fallback(small, large)

    response = await run(driver, chain, prompt_of(WINDOW + 5), max_tokens=10)

    assert response.text == "large"
    assert small_handler.requests == []
    assert len(large_handler.requests) == 1
    skipped, answered = response.attempts
    assert (skipped.model, skipped.error, skipped.phase, skipped.status) == (
        "gpt-4o-mini",
        "ContextWindowExceededError",
        "local",
        None,
    )
    assert (answered.model, answered.error) == ("gpt-4o", None)


async def test_a_chain_with_no_member_large_enough_raises_the_context_error(
    driver: Driver, make_model: MakeModel
) -> None:
    handler = Counting()
    chain = mm.fallback(make_model(handler, context_window=WINDOW), make_model(handler, context_window=WINDOW))

    with pytest.raises(ContextWindowExceededError) as raised:
        await run(driver, chain, prompt_of(WINDOW + 5), max_tokens=10)

    assert handler.requests == []
    assert [a.error for a in raised.value.attempts] == ["ContextWindowExceededError"]
