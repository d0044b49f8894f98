"""Fixtures for the resilience suite: the fault server, a fake clock, and the §11 invariant checks."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import modelmix as mm
from modelmix._http import HTTPModel
from modelmix.providers.openai import OpenAIModel
from modelmix.resilience import Clock, RetryPolicy, registry

from .faultserver import FaultServer

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

CANARY = "sk-CANARY-4f3e2d1c0b9a8776"
CANARY_PROMPT = "CANARY-PROMPT-do-not-log"


class NoSleepClock(Clock):
    """Real time; backoff and hint waits are counted, not slept (the soak and chaos runs measure
    behaviour, not backoff)."""

    def __init__(self) -> None:
        self.waits = 0

    def sleep(self, seconds: float) -> None:
        self.waits += 1

    async def asleep(self, seconds: float) -> None:
        self.waits += 1
        await anyio.lowlevel.checkpoint()


class FakeClock(Clock):
    """Real time plus whatever was "slept": waits are recorded and skipped, not slept."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(seconds, 0.0)
        await anyio.lowlevel.checkpoint()


@pytest.fixture(scope="session")
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture
def server(fault_server: FaultServer) -> FaultServer:
    fault_server.reset()
    return fault_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_endpoints() -> Iterator[None]:
    """Budgets and breakers are process-wide; every test starts from healthy endpoints."""
    registry.clear()
    yield
    registry.clear()


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="modelmix")


@pytest.fixture(params=["asyncio", "trio"])
def both_backends(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def policy(max_retries: int = 2, **changes: Any) -> RetryPolicy:
    options: dict[str, Any] = {
        "max_retries": max_retries,
        "min_attempt_time": 0.05,
        "deadline": 30.0,
        "ttft_timeout": 5.0,
        "idle_timeout": 5.0,
        "rng": random.Random(7),
    }
    options.update(changes)
    return RetryPolicy(**options)


def base_model(server: FaultServer, label: str, *, context_window: int | None = None, **kw: Any) -> OpenAIModel:
    return OpenAIModel(label, api_key=CANARY, base_url=server.url(label), context_window=context_window, **kw)


def resilient(
    server: FaultServer, label: str, clock: Clock, *, context_window: int | None = None, **changes: Any
) -> mm.ResilientModel:
    return mm.ResilientModel(
        base_model(server, label, context_window=context_window), policy=policy(**changes), clock=clock
    )


def chain(
    server: FaultServer,
    clock: Clock,
    *labels: str,
    deadline: float = 30.0,
    windows: dict[str, int] | None = None,
    **kw: Any,
) -> mm.FallbackModel:
    members = [resilient(server, label, clock, context_window=(windows or {}).get(label)) for label in labels]
    return mm.fallback(*members, deadline=deadline, min_attempt_time=0.05, clock=clock, **kw)


# ----------------------------------------------------------------------------- invariants (§11)


def leaves(model: Any) -> list[HTTPModel]:
    if isinstance(model, HTTPModel):
        return [model]
    found: list[HTTPModel] = []
    for attr in ("wrapped", "primary", "backup"):
        child = getattr(model, "__dict__", {}).get(attr)
        if child is not None:
            found += leaves(child)
    for child in getattr(model, "__dict__", {}).get("models", []) or []:
        found += leaves(child)
    return found


def assert_pool_released(model: Any) -> None:
    """No request in flight and no connection busy in any pool the model used."""
    for leaf in leaves(model):
        for client in (leaf._client, leaf._aclient):
            if client is None:
                continue
            transport: Any = client._transport
            slots = getattr(transport, "slots", None)
            if slots is not None:  # modelmix's admission in front of the pool: every slot is back
                assert slots.waiting == 0, f"{leaf!r}: calls still waiting for a connection slot"
                assert slots._free == slots.limit, f"{leaf!r}: connection slots still taken"
                transport = transport.inner
            if hasattr(transport, "connections_in_use"):  # the aiohttp transport: no httpcore pool
                assert transport.connections_in_use() == 0, f"{leaf!r}: aiohttp connections still busy"
                continue
            pool: Any = transport._pool
            assert not pool._requests, f"{leaf!r}: requests still in the pool: {pool!r}"
            busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
            assert not busy, f"{leaf!r}: connections still busy: {pool!r}"


async def aclose_clients(model: Any) -> None:
    """Close the HTTP clients a test passed in (models don't own those)."""
    for leaf in leaves(model):
        if leaf._aclient is not None:
            await leaf._aclient.aclose()


def _walk(exc: BaseException | None, seen: set[int]) -> Iterator[BaseException]:
    if exc is None or id(exc) in seen:
        return
    seen.add(id(exc))
    yield exc
    yield from _walk(exc.__cause__, seen)
    yield from _walk(exc.__context__, seen)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _walk(inner, seen)


def assert_no_secrets(caplog: pytest.LogCaptureFixture, *things: Any, error: BaseException | None = None) -> None:
    texts = [caplog.text, *(repr(t) for t in things)]
    for exc in _walk(error, set()):
        texts += [str(exc), repr(exc), *getattr(exc, "__notes__", [])]
        texts += [repr(a) for a in getattr(exc, "attempts", [])]
    for text in texts:
        assert CANARY not in text
        assert CANARY_PROMPT not in text


class Leaks:
    """Counts asyncio tasks around a test body (trio's nurseries can't leak past their block)."""

    def __init__(self) -> None:
        self.before = self._count()

    @staticmethod
    def _count() -> int:
        try:
            return len(asyncio.all_tasks())
        except RuntimeError:
            return 0

    def check(self) -> None:
        assert self._count() <= self.before, "a task was left behind"


@pytest.fixture
async def leaks() -> AsyncIterator[Leaks]:
    tracker = Leaks()
    yield tracker
    tracker.check()


def refused_url() -> str:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def raising_transport(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)
