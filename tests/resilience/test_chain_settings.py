"""A per-call option that one member of a chain can't take is refused for the whole chain before
the first member is called, so the mistake shows on a good day, not only during an outage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from typing_extensions import Unpack

import modelmix as mm
from modelmix.testing import FunctionModel

REASONING = {"reasoning_effort": "low"}


class Server:
    """A MockTransport that answers (or refuses to connect) and records request bodies."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "model": "gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            },
        )

    def model(self, **options: Any) -> mm.Model:
        return mm.model(
            "openai:gpt-4o",
            api_key="sk-test",
            http_client=httpx.Client(transport=httpx.MockTransport(self)),
            async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(self)),
            max_retries=0,
            **options,
        )


class NoExtraBody(FunctionModel):
    """A member whose own option check refuses every extra_body field (as the in-process model
    refuses fields that are not llama.cpp sampling options)."""

    def __init__(self) -> None:
        super().__init__(lambda messages, settings: "from the backup")
        self.provider = "strict"
        self.name = "backup"

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        super().check_settings(settings)
        if settings.get("extra_body"):
            raise mm.ConfigurationError(f"extra_body key(s) {sorted(settings['extra_body'])} are not accepted")

    def chat(self, messages: mm.MessagesInput, **settings: Unpack[mm.Settings]) -> mm.ChatResponse:
        self.check_settings(settings)
        return super().chat(messages, **settings)


@pytest.mark.parametrize("up", [True, False], ids=["primary-healthy", "primary-down"])
def test_an_option_a_member_cant_take_is_refused_before_any_member_is_called(up: bool) -> None:
    server = Server(up=up)
    chain = mm.fallback(server.model(), NoExtraBody())
    with pytest.raises(mm.ConfigurationError, match=r"fallback member 2 \(strict:backup\)") as caught:
        chain.chat("hi", extra_body=REASONING)
    assert "settings={'extra_body'" in str(caught.value)
    assert server.bodies == []


async def test_the_async_chain_and_streams_refuse_it_up_front_too() -> None:
    server = Server()
    chain = mm.fallback(server.model(), NoExtraBody())
    with pytest.raises(mm.ConfigurationError, match="fallback member 2"):
        await chain.achat("hi", extra_body=REASONING)
    with pytest.raises(mm.ConfigurationError, match="fallback member 2"):
        chain.stream("hi", extra_body=REASONING)
    with pytest.raises(mm.ConfigurationError, match="fallback member 2"):
        chain.astream("hi", extra_body=REASONING)
    assert server.bodies == []


async def test_a_hedge_checks_its_backup_before_racing() -> None:
    server = Server()
    hedged = mm.hedge(server.model(), NoExtraBody(), after=0.5)
    with pytest.raises(mm.ConfigurationError, match="strict:backup"):
        await hedged.achat("hi", extra_body=REASONING)
    with pytest.raises(mm.ConfigurationError, match="strict:backup"):
        hedged.chat("hi", extra_body=REASONING)
    assert server.bodies == []


def test_an_option_scoped_to_one_member_goes_only_to_it() -> None:
    server = Server()
    chain = mm.fallback(server.model(settings={"extra_body": REASONING}), NoExtraBody())
    assert chain.chat("hi").text == "ok"
    assert server.bodies[0]["reasoning_effort"] == "low"


def test_a_scoped_option_stays_with_its_member_when_the_chain_falls_back() -> None:
    server = Server(up=False)
    chain = mm.fallback(server.model(settings={"extra_body": REASONING}), NoExtraBody())
    assert chain.chat("hi").text == "from the backup"


def test_a_bad_common_setting_is_reported_plainly() -> None:
    server = Server()
    with pytest.raises(mm.ConfigurationError, match=r"^setting 'max_tokens'"):
        mm.fallback(server.model(), NoExtraBody()).chat("hi", max_tokens=0)
    assert server.bodies == []


def test_the_local_model_refuses_its_unknown_options_without_generating() -> None:
    with pytest.raises(mm.ConfigurationError, match="bogus"):
        mm.model("local", max_retries=0).check_settings({"extra_body": {"bogus": 1}})


def test_a_chain_with_the_local_model_refuses_its_options_before_the_first_member() -> None:
    dead = mm.model("openai-compatible:dead", base_url="http://127.0.0.1:9/v1", max_retries=0)
    chain = mm.fallback(dead, mm.model("local", max_retries=0))
    with pytest.raises(mm.ConfigurationError, match="bogus"):
        chain.chat("hi", extra_body={"bogus": 1})


def test_an_unknown_local_option_is_a_configuration_error_with_a_suggestion() -> None:
    with pytest.raises(mm.ConfigurationError, match="n_ctx"):
        mm.model("local", n_ctxx=2048)
