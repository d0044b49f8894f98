"""Testing with fakes: exercise code that calls a model with no key and no network.

Shows `modelmix.testing.FunctionModel` (answers from a Python function, in-process) and
`FakeOpenAIServer` (a scripted OpenAI-compatible server on 127.0.0.1, so the real HTTP provider,
streaming and error mapping run). The same `triage` function is tested against both, including a
simulated rate limit. Runs anywhere: it needs no environment variables.

    python examples/testing_with_fakes.py
"""

from __future__ import annotations

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply, FunctionModel


def triage(model: mm.Model, ticket: str) -> str:
    """The application code under test: label a support ticket, or 'unknown' if the model is busy."""
    try:
        response = model.chat(
            [mm.system("Answer with one word: bug, billing or other."), mm.user(ticket)],
            temperature=0.0,
            max_tokens=5,
        )
    except mm.RateLimitError:
        return "unknown"
    label = response.text.strip().lower()
    return label if label in {"bug", "billing", "other"} else "other"


def label_by_keyword(messages: list[mm.Message], settings: mm.Settings) -> str:
    text = messages[-1].text.lower()
    if "busy" in text:
        raise mm.RateLimitError("rate limited", status=429, retry_after=1.0, provider="function")
    return "Billing" if "invoice" in text else "bug"


def test_with_function_model() -> None:
    model = FunctionModel(label_by_keyword)
    assert triage(model, "My invoice is wrong") == "billing"
    assert triage(model, "The app crashes on start") == "bug"
    assert triage(model, "busy day") == "unknown"
    assert model.calls[0][0].role == "system"
    print("FunctionModel: 3 tickets triaged as expected")


def test_with_fake_server() -> None:
    script: list[str | FakeReply] = ["billing", "I cannot decide", FakeReply(text="Rate limit reached", status=429)]
    with (
        FakeOpenAIServer(reply=script) as server,
        # max_retries=0: see each scripted failure exactly once (models retry 429s by default).
        mm.model("openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0) as model,
    ):
        assert triage(model, "My invoice is wrong") == "billing"
        assert triage(model, "Something odd happened") == "other"
        assert triage(model, "Anything") == "unknown"
        assert len(server.requests) == 3
        sent = server.requests[0]
        assert sent["model"] == "gpt-4o-mini"
        assert sent["temperature"] == 0.0
        assert sent["messages"][0]["role"] == "system"
    print(f"FakeOpenAIServer: {len(server.requests)} HTTP requests answered as scripted")


if __name__ == "__main__":
    test_with_function_model()
    test_with_fake_server()
    print("all checks passed")
