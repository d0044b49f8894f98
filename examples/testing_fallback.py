"""Testing that a fallback chain falls back, with the public test kit alone.

Three troubles a primary model can have — it is slow, it is rate limited (429 with a
``retry-after`` header), its stream drops before any content — each checked sync and async,
first in-process with `FunctionModel`, then over real HTTP with `FakeOpenAIServer`. A
`FakeClock` makes the 60-second delay and the retry hints cost no real time.

Run it as a script (``python examples/testing_fallback.py``) or copy the checks into pytest tests.
"""

from __future__ import annotations

import anyio

import modelmix as mm
from modelmix.testing import FakeClock, FakeOpenAIServer, FakeReply, FunctionModel

TROUBLES = {
    "slow": FakeReply("too late", delay=60.0),
    "rate limited": FakeReply("busy", status=429, headers={"retry-after": "30"}),
    "dropped stream": FakeReply("Hel", drop_after=0),
}


def in_process_chain(first: FakeReply, clock: FakeClock) -> mm.Model:
    primary = FunctionModel(first, name="primary", clock=clock)
    backup = FunctionModel("from the backup", name="backup", clock=clock)
    # Its own endpoint registry: each check starts with closed circuit breakers.
    return mm.fallback(primary, backup, clock=clock, endpoints=mm.resilience.EndpointRegistry())


def check_sync(trouble: str, chain: mm.Model) -> list[str]:
    if trouble == "dropped stream":
        with chain.stream("Hi") as stream:
            assert "".join(stream.text_deltas()) == "from the backup"
        attempts = stream.response.attempts
    else:
        response = chain.chat("Hi", timeout=5.0)
        assert response.text == "from the backup"
        attempts = response.attempts
    return [f"{a.model}: {a.error or 'answered'}" for a in attempts]


async def check_async(trouble: str, chain: mm.Model) -> list[str]:
    if trouble == "dropped stream":
        async with chain.astream("Hi") as stream:
            assert "".join([d async for d in stream.text_deltas()]) == "from the backup"
        attempts = stream.response.attempts
    else:
        response = await chain.achat("Hi", timeout=5.0)
        assert response.text == "from the backup"
        attempts = response.attempts
    return [f"{a.model}: {a.error or 'answered'}" for a in attempts]


def over_http(trouble: str, first: FakeReply) -> list[str]:
    # Real time here: the slow server really waits 60 s, and the 0.5 s timeout cuts it on the wire.
    with FakeOpenAIServer(reply=first) as broken, FakeOpenAIServer(reply="from the backup") as healthy:
        primary = mm.model("openai:primary", base_url=broken.base_url, api_key="sk-test", max_retries=0)
        backup = mm.model("openai:backup", base_url=healthy.base_url, api_key="sk-test", max_retries=0)
        chain = mm.fallback(primary, backup, endpoints=mm.resilience.EndpointRegistry())
        with chain:
            if trouble == "dropped stream":
                with chain.stream("Hi") as stream:
                    assert "".join(stream.text_deltas()) == "from the backup"
                attempts = stream.response.attempts
            else:
                response = chain.chat("Hi", timeout=0.5)
                assert response.text == "from the backup"
                attempts = response.attempts
    return [f"{a.model}: {a.error or 'answered'}" for a in attempts]


async def main() -> None:
    for trouble, first in TROUBLES.items():
        clock = FakeClock()
        print(f"{trouble:>14} | sync  | {check_sync(trouble, in_process_chain(first, clock))}")
        print(f"{trouble:>14} | async | {await check_async(trouble, in_process_chain(first, clock))}")
        print(f"{trouble:>14} | HTTP  | {await anyio.to_thread.run_sync(over_http, trouble, first)}")
    print("all fallbacks checked")


if __name__ == "__main__":
    anyio.run(main)
