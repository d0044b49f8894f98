"""Many workers, one policy: a budget, a rate limit and circuit breakers shared through Redis.

Run it in several terminals at once (or under gunicorn) against one Redis: the workers spend one
budget between them, keep to one tokens-per-minute limit, and share each endpoint's breaker.

    MODELMIX_REDIS_URL=redis://127.0.0.1:6379/0 python examples/shared_state.py

With no Redis reachable it says so and exits (nothing else is needed: the models are fakes).
"""

from __future__ import annotations

import os
import sys
import time

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply

URL = os.environ.get("MODELMIX_REDIS_URL", "redis://127.0.0.1:6379/0")


def main() -> None:
    try:
        store = mm.shared_state(URL, prefix="modelmix-example")
    except mm.MissingDependencyError as exc:
        print(f"skipped: {exc}")
        return
    if not store.ping():  # type: ignore[attr-defined]
        print(f"skipped: no Redis reachable at {URL} (set MODELMIX_REDIS_URL to run this example)")
        return
    mm.register_model_info("example-gpt", mm.ModelInfo(context_window=8_000, input_per_mtok=1.0, output_per_mtok=4.0))
    with FakeOpenAIServer(FakeReply("Hello from a worker", output_tokens=20), model="example-gpt") as server:
        model = mm.model("openai:example-gpt", base_url=server.base_url, api_key="sk-example")
        # Every process using this scope spends from one $0.01, and keeps to one 20,000 TPM limit.
        limited = mm.rate_limit(model, tpm=20_000, max_concurrency=8, scope="example-gpt")
        team = mm.budget(mm.fallback(limited, deadline=30), max_usd="0.01", scope="example-team")
        try:
            answer = team.chat("Say hello", max_tokens=50)
            print(f"answer: {answer.text}")
        except mm.BudgetExceededError as error:
            # Every run of this example, in every terminal, spends from the same $0.01.
            print(f"the shared budget is spent: {error}")
        books = team.snapshot()
        print(f"shared budget: {books.spent} spent, {books.left} left of {books.max_usd} (all workers together)")
        breaker = mm.resilience.registry.breaker(model.endpoint, model.name)
        print(f"shared breaker for {breaker.name}: {breaker.state(time.monotonic()).value}")
    mm.shared_state(None)
    store.close()


if __name__ == "__main__":
    main()
    sys.exit(0)
