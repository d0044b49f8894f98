"""Every modelmix error survives pickling — fields and all, secrets never — so a worker process
that hits a 429 hands its error back to the pool instead of breaking it."""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

import modelmix as mm

# Every module that defines errors, imported before the walk below, so it is complete whatever ran first.
import modelmix._tool_loop
import modelmix._tools
from modelmix import ModelMixError
from modelmix._response import Attempt, Usage

from ._loopback import serving

CANARY = "sk-CANARYpickle0123456789abcdefghijklmnopqrst"

# Values for the constructor arguments some classes require, and for the shared context keywords.
_REQUIRED: dict[str, Any] = {
    "kind": "connect",
    "status": 429,
    "limit": 1024,
    "capability": "tools",
    "feature": "tokens",
    "extra": "tokens",
    "module": "tiktoken",
    "tool_name": "get_weather",
    "raw_arguments": '{"city": 7}',
    "steps": [],
    "messages": [],
    "refusal": "I can't help with that.",
    "raw_text": '{"name": 7}',
    "strategy": "native",
    "requested": 1100,
    "input_tokens": 1000,
    "output_tokens": 100,
    "exact": True,
    "method": "tiktoken",
    "max_usd": Decimal("5"),
    "spent": Decimal("1.25"),
    "reserved": Decimal("0.5"),
    "needed": Decimal("4"),
    "scope": "team-a",
}
_CONTEXT: dict[str, Any] = {
    "provider": "openai",
    "model": "gpt-x",
    "request_id": "req_1",
    "host": "127.0.0.1",
    "url": "http://127.0.0.1:8080/v1/chat/completions",
    "retry_after": 1.5,
    "phase": "status",
    "code": "rate_limit",
    "error_type": "requests",
}


def every_error_class() -> list[type[ModelMixError]]:
    found: list[type[ModelMixError]] = []
    todo: list[type[ModelMixError]] = [ModelMixError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(set(found), key=lambda cls: cls.__name__)


def build(cls: type[ModelMixError]) -> ModelMixError:
    if cls is mm.AllModelsFailedError:
        inner = [build(mm.RateLimitError), build(mm.TransportError)]
        attempt = Attempt(model="gpt-x", provider="openai", host="127.0.0.1:8080", status=429, error="RateLimitError")
        return mm.AllModelsFailedError("every model failed", inner, attempts=[attempt])
    parameters = inspect.signature(cls.__init__).parameters
    positional = [
        _REQUIRED.get(name, f"the {name}") for name, p in parameters.items() if p.kind == p.POSITIONAL_OR_KEYWORD
    ][1:]
    keywords = {
        name: value
        for name, value in _REQUIRED.items()
        if name in parameters and parameters[name].kind == parameters[name].KEYWORD_ONLY
    }
    if issubclass(cls, mm.ProviderError):
        keywords.update(_CONTEXT)
    if issubclass(cls, mm.APIStatusError):
        keywords["status"] = 429
    if issubclass(cls, mm.TransportError):
        keywords["kind"] = "connect"
    if cls is mm.InBandStreamError:
        keywords["mapped"] = build(mm.ServerError)
    if cls is mm.StreamInterruptedError:
        keywords.update(partial_text="Hel", usage=Usage(input_tokens=3, output_tokens=1), n_events=2)
    return cls(*positional, **keywords)


def fields(value: Any) -> Any:
    """What an error holds, comparable across a pickle round trip."""
    if isinstance(value, BaseException):
        nested = {key: fields(item) for key, item in vars(value).items()}
        extra = [fields(item) for item in getattr(value, "exceptions", ())]
        return (type(value), str(value), value.args if not extra else value.args[0], nested, extra)
    if isinstance(value, list):
        return [fields(item) for item in value]
    return value


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle_with_its_fields(cls: type[ModelMixError]) -> None:
    error = build(cls)
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is cls
    assert fields(restored) == fields(error)
    assert repr(restored) == repr(error)


def test_a_modelmix_cause_travels_and_a_foreign_one_stays_behind() -> None:
    try:
        try:
            raise ValueError(f"raw text with {CANARY}")
        except ValueError as foreign:
            raise mm.TransportError("reset", kind="protocol") from foreign
    except mm.TransportError as transport:
        wrapped = mm.StreamInterruptedError("cut", partial_text="Hi")
        wrapped.__cause__ = transport
    restored = pickle.loads(pickle.dumps(wrapped))
    assert isinstance(restored.__cause__, mm.TransportError)
    assert restored.__cause__.__cause__ is None
    assert CANARY.encode() not in pickle.dumps(wrapped)


# --------------------------------------------------------------------------- a real process pool


class _RateLimited(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        given = self.headers.get("authorization", "").removeprefix("Bearer ")
        body = (
            b'{"error": {"message": "Rate limit reached for key '
            + given.encode()
            + b'", "type": "requests", "code": "rate_limit_exceeded"}}'
        )
        self.send_response(429)
        self.send_header("content-type", "application/json")
        self.send_header("retry-after", "7")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def ask_in_worker(base_url: str) -> str:
    """Runs in the worker process: a call that the server answers with a 429."""
    model = mm.model("openai:gpt-x", base_url=base_url, api_key=CANARY, max_retries=0)
    return model.chat("hi").text


def test_a_worker_process_that_hits_a_429_hands_the_error_back_and_the_pool_lives_on() -> None:
    with (
        serving(_RateLimited) as base_url,
        ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        for _ in range(2):  # the second call proves the pool was not broken by the first
            with pytest.raises(mm.RateLimitError) as caught:
                pool.submit(ask_in_worker, base_url).result(timeout=60)
            error = caught.value
            assert (error.status, error.retry_after, error.provider, error.model) == (429, 7.0, "openai", "gpt-x")
            assert error.code == "rate_limit_exceeded"
            assert CANARY[:12] not in str(error)
            assert CANARY[-12:] not in str(error)
