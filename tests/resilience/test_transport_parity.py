"""The aiohttp transport fails the way the httpx transport does: the same error class, kind, phase
and retry verdict for every network fault, on chat calls and streams alike, with every connection
given back afterwards."""

from __future__ import annotations

from typing import Any

import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel

from .conftest import CANARY, assert_pool_released, refused_url
from .faultserver import Fault, FaultServer

pytest.importorskip("aiohttp", reason="the aiohttp transport needs pip install 'modelmix[aiohttp]'")

MSG = "hello"
FAULTS = [
    pytest.param(Fault("reset_before_headers"), "chat", id="reset_before_headers-chat"),
    pytest.param(Fault("reset_before_headers"), "stream", id="reset_before_headers-stream"),
    pytest.param(Fault("silent"), "chat", id="silent-chat"),
    pytest.param(Fault("silent"), "stream", id="silent-stream"),
    pytest.param(Fault("reset_after_chunks"), "stream", id="reset_after_chunks"),
    pytest.param(Fault("eof_no_terminator"), "stream", id="eof_no_terminator"),
    pytest.param(Fault("malformed_json"), "stream", id="malformed_json"),
    pytest.param(Fault("oversized_line"), "stream", id="oversized_line"),
    pytest.param(Fault("redirect"), "chat", id="redirect"),
    pytest.param(Fault.error(503, headers={"retry-after": "7"}), "chat", id="503-chat"),
    pytest.param(Fault.error(429), "stream", id="429-stream"),
]


def _describe(error: mm.ModelMixError) -> tuple[Any, ...]:
    cause = error.__cause__ if isinstance(error, mm.StreamInterruptedError) else None
    return (
        type(error).__name__,
        getattr(error, "kind", None),
        getattr(error, "phase", None),
        getattr(error, "retryable", None),
        getattr(error, "retry_after", None),
        None if cause is None else (type(cause).__name__, getattr(cause, "kind", None)),
    )


async def _outcome(base_url: str, label: str, mode: str, transport: str) -> tuple[Any, ...]:
    model = OpenAIModel(label, api_key=CANARY, base_url=base_url, timeout=0.5, transport=transport)  # type: ignore[arg-type]
    async with model:
        try:
            if mode == "chat":
                await model.achat(MSG)
            else:
                async with model.astream(MSG) as stream:
                    async for _event in stream:
                        pass
        except mm.ModelMixError as error:
            assert_pool_released(model)
            return _describe(error)
    return ("no error",)


@pytest.mark.parametrize(("fault", "mode"), FAULTS)
async def test_a_fault_reads_the_same_on_both_transports(server: FaultServer, fault: Fault, mode: str) -> None:
    outcomes = {}
    for transport in ("httpx", "aiohttp"):
        label = f"{fault.kind}-{fault.status}-{mode}-{transport}"
        server.script(label, fault)
        outcomes[transport] = await _outcome(server.url(label), label, mode, transport)
    assert outcomes["aiohttp"] == outcomes["httpx"]
    assert outcomes["httpx"] != ("no error",)


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_refused_connection_reads_the_same_on_both_transports(mode: str) -> None:
    url = refused_url()
    outcomes = {transport: await _outcome(url, "down", mode, transport) for transport in ("httpx", "aiohttp")}
    assert outcomes["aiohttp"] == outcomes["httpx"] == ("TransportError", "connect", "not_sent", True, None, None)
