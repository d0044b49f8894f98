"""Spans and metrics through the real OpenTelemetry SDK's in-memory exporters: the span tree of a
call that retries, falls back, hedges and streams, against the fault-injecting server and the
in-process model."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import modelmix as mm
from modelmix.providers.openai import OpenAIModel
from modelmix.testing import FakeClock, FakeReply, FunctionModel
from tests.resilience.faultserver import Fault, FaultServer

# First: it skips this module, with the reason, when the OpenTelemetry SDK is not installed.
from ._otel_support import SpanKind, StatusCode, Telemetry, attrs, make_telemetry, trace

KEY = "sk-test-0000"


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    yield from make_telemetry(capture_content=False)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


_opened: list[mm.Model] = []


@pytest.fixture(autouse=True)
def _reset(server: FaultServer) -> Iterator[None]:
    server.reset()
    yield
    while _opened:
        _opened.pop().close()


def _http(server: FaultServer, label: str) -> OpenAIModel:
    model = OpenAIModel(label, api_key=KEY, base_url=server.url(label))
    _opened.append(model)
    return model


def _bare(server: FaultServer, label: str, **options: Any) -> mm.Model:
    model = mm.model(f"openai:{label}", api_key=KEY, base_url=server.url(label), **options)
    _opened.append(model)
    return model


def _chain(server: FaultServer) -> mm.Model:
    server.script("gpt-4o", Fault.error(503, headers={"retry-after": "1"}), Fault.error(503))
    server.script("gpt-4o-mini", Fault.ok("hello"))
    clock = FakeClock()
    first = mm.retrying(_http(server, "gpt-4o"), max_retries=1, clock=clock)
    return mm.fallback(first, _http(server, "gpt-4o-mini"), clock=clock)


def _check_fallback_tree(otel: Telemetry, server: FaultServer, *, streaming: bool) -> None:
    [root] = otel.roots()
    assert root.name == "chat gpt-4o"
    assert root.kind is SpanKind.CLIENT
    root_attrs = attrs(root)
    assert root_attrs["gen_ai.operation.name"] == "chat"
    assert root_attrs["gen_ai.provider.name"] == "openai"
    assert root_attrs["gen_ai.request.model"] == "gpt-4o"
    assert root_attrs["server.address"] == "127.0.0.1"
    assert root_attrs["server.port"] == server.port
    assert root_attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert root_attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert root_attrs["gen_ai.usage.input_tokens"] == 3
    assert root_attrs["gen_ai.usage.output_tokens"] == 2
    assert root_attrs["modelmix.fallback.position"] == 1
    assert root_attrs["modelmix.attempt.count"] == 3
    assert root_attrs["modelmix.outcome"] == "ok"
    assert "modelmix.cost.usd" in root_attrs
    assert root.status.status_code is StatusCode.UNSET
    assert ("gen_ai.response.time_to_first_chunk" in root_attrs) is streaming
    attempts = otel.children(root)
    assert [s.name for s in attempts] == ["chat gpt-4o", "chat gpt-4o", "chat gpt-4o-mini"]
    assert [attrs(s)["modelmix.attempt.retry"] for s in attempts] == [0, 1, 0]
    assert [attrs(s)["modelmix.fallback.position"] for s in attempts] == [0, 0, 1]
    assert [attrs(s).get("error.type") for s in attempts] == ["ServerError", "ServerError", None]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attrs(attempts[0])["gen_ai.response.finish_reasons"] == ("error",)
    assert attrs(attempts[2])["gen_ai.response.id"] == "c1"  # streams: from their chunks
    assert root_attrs["gen_ai.response.id"] == "c1"
    for span in attempts:
        assert span.kind is SpanKind.CLIENT
        assert attrs(span)["server.port"] == server.port
    assert attrs(attempts[2])["gen_ai.usage.input_tokens"] == 3
    assert ("gen_ai.response.time_to_first_chunk" in attrs(attempts[2])) is streaming
    [event] = [e for e in attempts[0].events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "modelmix.ServerError"
    assert "status=503" in str(event.attributes["exception.message"])
    [wait] = [e for e in root.events if e.name == "modelmix.retry.wait"]
    assert (attempts[0].end_time or 0) <= wait.timestamp <= (attempts[1].start_time or 0)
    details = dict(wait.attributes or {})
    seconds = details.pop("modelmix.retry.wait.seconds")
    assert isinstance(seconds, float)
    assert 1.0 <= seconds <= 1.1  # the server's 1 s, plus up to 10 % jitter
    assert details == {
        "modelmix.attempt.retry": 1,
        "error.type": "ServerError",
        "http.response.status_code": 503,
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "modelmix.fallback.position": 0,
    }


def test_chat_through_retries_and_a_fallback(otel: Telemetry, server: FaultServer) -> None:
    assert _chain(server).chat("hi").text == "hello"
    _check_fallback_tree(otel, server, streaming=False)


def test_stream_through_retries_and_a_fallback(otel: Telemetry, server: FaultServer) -> None:
    with _chain(server).stream("hi") as stream:
        assert stream.until_done().text == "hello"
    _check_fallback_tree(otel, server, streaming=True)


def test_async_calls_on_both_backends(otel: Telemetry, server: FaultServer, both_backends: str) -> None:
    async def run() -> None:
        assert (await _chain(server).achat("hi")).text == "hello"
        async with _chain(server).astream("hi") as stream:
            await stream.until_done()
        while _opened:  # async clients are closed on the loop that opened them
            await _opened.pop().aclose()

    anyio.run(run, backend=both_backends)
    roots = otel.roots()
    assert [r.name for r in roots] == ["chat gpt-4o", "chat gpt-4o"]
    assert [len(otel.children(r)) for r in roots] == [3, 3]
    for root in roots:
        [wait] = [e for e in root.events if e.name == "modelmix.retry.wait"]
        assert wait.attributes is not None
        assert wait.attributes["modelmix.attempt.retry"] == 1
        assert attrs(otel.children(root)[2])["gen_ai.response.id"] == "c1"
    assert "gen_ai.response.time_to_first_chunk" in attrs(roots[1])


def test_a_stream_that_ends_before_its_final_event(otel: Telemetry, server: FaultServer) -> None:
    server.script("m", Fault("eof_no_terminator", chunks=2))
    model = _bare(server, "m", max_retries=0)
    with pytest.raises(mm.StreamInterruptedError) as raised, model.stream("hi") as stream:
        stream.until_done()
    assert isinstance(raised.value.__cause__, mm.StreamTruncatedError)
    [root] = otel.roots()
    assert attrs(root)["gen_ai.response.finish_reasons"] == ("error",)
    assert attrs(root)["error.type"] == "StreamInterruptedError"
    assert root.status.status_code is StatusCode.ERROR
    [attempt] = otel.children(root)
    assert attrs(attempt)["gen_ai.response.finish_reasons"] == ("error",)
    assert attrs(attempt)["gen_ai.response.id"] == "c1"  # its chunks carried it before the cut


def _responses_stream(request: httpx.Request) -> httpx.Response:
    def event(kind: str, **fields: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n"

    created = {"id": "resp_7", "model": "gpt-5-mini", "status": "in_progress", "output": []}
    done = {**created, "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 1}}
    body = (
        event("response.created", response=created)
        + event("response.output_text.delta", output_index=0, content_index=0, delta="hi")
        + event("response.completed", response=done)
    )
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def test_a_responses_stream_has_its_response_id(otel: Telemetry, both_backends: str) -> None:
    sync_client = httpx.Client(transport=httpx.MockTransport(_responses_stream))
    model = mm.model("openai:gpt-5-mini", api="responses", api_key=KEY, http_client=sync_client, max_retries=0)
    with model.stream("hi") as stream:
        assert stream.until_done().text == "hi"

    async def run() -> None:
        async_client = httpx.AsyncClient(transport=httpx.MockTransport(_responses_stream))
        amodel = mm.model("openai:gpt-5-mini", api="responses", api_key=KEY, async_http_client=async_client)
        async with amodel.astream("hi") as astream:
            await astream.until_done()
        await async_client.aclose()

    anyio.run(run, backend=both_backends)
    for root in otel.roots():
        [attempt] = otel.children(root)
        assert attrs(attempt)["gen_ai.response.id"] == "resp_7"
        assert attrs(root)["gen_ai.response.id"] == "resp_7"


def test_a_stream_answered_with_one_json_body_has_its_id(otel: Telemetry) -> None:
    answer = {
        "id": "chatcmpl-9",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    }
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)))
    model = mm.model("openai:m", api_key=KEY, http_client=client, max_retries=0)
    with model.stream("hi") as stream:
        assert stream.until_done().text == "hi"
    [root] = otel.roots()
    [attempt] = otel.children(root)
    assert attrs(attempt)["gen_ai.response.id"] == "chatcmpl-9"


def test_a_bare_provider_model_is_one_span_with_one_attempt(otel: Telemetry, server: FaultServer) -> None:
    model = _bare(server, "m", max_retries=0)
    model.chat("hi")
    [root] = otel.roots()
    [attempt] = otel.children(root)
    assert root.name == attempt.name == "chat m"


def test_the_in_process_model_is_internal(otel: Telemetry) -> None:
    FunctionModel("hi", name="tiny").chat("x")
    [root] = otel.roots()
    assert root.kind is SpanKind.INTERNAL
    assert "server.address" not in attrs(root)
    assert [c.kind for c in otel.children(root)] == [SpanKind.INTERNAL]


def test_a_hedged_call_shows_both_contenders(otel: Telemetry, both_backends: str) -> None:
    async def run() -> None:
        slow = FunctionModel(FakeReply("slow", delay=5.0), name="primary")
        hedged = mm.hedge(slow, FunctionModel("fast", name="backup"), after=0.01)
        assert (await hedged.achat("x")).text == "fast"
        async with hedged.astream("x") as stream:
            assert (await stream.until_done()).text == "fast"

    anyio.run(run, backend=both_backends)
    roots = otel.roots()
    assert [r.name for r in roots] == ["chat primary", "chat primary"]
    for root in roots:
        assert attrs(root)["modelmix.fallback.position"] == 1
        by_name = {attrs(c)["gen_ai.request.model"]: attrs(c) for c in otel.children(root)}
        assert by_name["primary"]["modelmix.outcome"] in ("cancelled", "closed")
        assert "error.type" not in by_name["primary"]
        assert by_name["backup"]["modelmix.outcome"] == "ok"


def test_user_spans_around_the_call_are_its_parents(otel: Telemetry, both_backends: str) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    model = mm.retrying(FunctionModel("hi", name="m"), clock=FakeClock())

    async def run() -> None:
        with tracer.start_as_current_span("handle request"):
            await model.achat("x")
            async with model.astream("x") as stream:
                await stream.until_done()

    anyio.run(run, backend=both_backends)
    with tracer.start_as_current_span("sync request"):
        model.chat("x")
    [handler, sync_handler] = otel.roots()
    assert [s.name for s in otel.children(handler)] == ["chat m", "chat m"]
    assert [s.name for s in otel.children(sync_handler)] == ["chat m"]
    for call in otel.children(handler):
        assert call.context.trace_id == handler.context.trace_id
        assert len(otel.children(call)) == 1
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_sampling_settings_are_on_the_span_from_its_start(otel: Telemetry) -> None:
    model = FunctionModel("hi", name="m", settings={"temperature": 0.2})
    model.chat("x", max_tokens=50, top_p=0.9, stop=["END"], seed=7)
    [root] = otel.roots()
    assert {k: v for k, v in attrs(root).items() if k.startswith("gen_ai.request.")} == {
        "gen_ai.request.model": "m",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
    }


def test_metrics_of_a_fallback_call(otel: Telemetry, server: FaultServer) -> None:
    _chain(server).chat("hi")
    with _chain(server).stream("hi") as stream:
        stream.until_done()
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 2
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-mini",
        "modelmix.fallback.position": 1,
        "modelmix.outcome": "ok",
    }
    [first_chunk] = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 1
    tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.points("gen_ai.client.token.usage")}
    assert tokens["input"].sum == 6
    assert tokens["output"].sum == 4
    assert tokens["input"].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    [cost] = otel.points("modelmix.client.cost")
    assert cost.value > 0


def test_failed_call_metrics_carry_the_error_type(otel: Telemetry, server: FaultServer) -> None:
    server.script("m", Fault.error(400))
    model = _bare(server, "m")
    with pytest.raises(mm.BadRequestError):
        model.chat("hi")
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "BadRequestError"
    assert duration.attributes["modelmix.outcome"] == "error"


def test_uninstrument_stops_emitting(server: FaultServer) -> None:
    telemetry = make_telemetry()
    otel = next(telemetry)
    FunctionModel("hi").chat("x")
    next(telemetry, None)  # uninstrument
    FunctionModel("hi").chat("x")
    assert len(otel.roots()) == 1


def test_the_embedded_local_model_is_internal(otel: Telemetry) -> None:
    from tests.docs._runner import local_model_unavailable

    reason = local_model_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with mm.model("local:") as local, local.stream("Say hi", max_tokens=4) as stream:
        stream.until_done()
    [root] = otel.roots()
    assert root.kind is SpanKind.INTERNAL
    assert [c.kind for c in otel.children(root)] == [SpanKind.INTERNAL]
    assert "gen_ai.response.time_to_first_chunk" in attrs(root)


def test_a_member_its_breaker_refused_is_an_event_of_the_call(otel: Telemetry, server: FaultServer) -> None:
    server.script("gpt-4o", Fault.error(401))  # marks the endpoint misconfigured
    server.script("gpt-4o-mini", Fault.ok("hello"))
    chain = mm.fallback(_http(server, "gpt-4o"), _http(server, "gpt-4o-mini"), clock=FakeClock())
    chain.chat("hi")
    chain.chat("hi")
    first, second = otel.roots()
    assert [s.name for s in otel.children(first)] == ["chat gpt-4o", "chat gpt-4o-mini"]
    assert [s.name for s in otel.children(second)] == ["chat gpt-4o-mini"]
    [event] = [e for e in second.events if e.name == "modelmix.circuit_open"]
    assert event.attributes is not None
    assert event.attributes["gen_ai.request.model"] == "gpt-4o"
    assert event.attributes["modelmix.server"] == f"127.0.0.1:{server.port}"


def test_an_attempt_without_a_first_token_in_time_is_an_error(
    otel: Telemetry, server: FaultServer, both_backends: str
) -> None:
    server.script("gpt-4o", Fault("silent"))
    server.script("gpt-4o-mini", Fault.ok("hello"))

    def chain() -> mm.Model:
        slow = mm.retrying(_http(server, "gpt-4o"), max_retries=0, ttft_timeout=0.3)
        return mm.fallback(slow, _http(server, "gpt-4o-mini"), breakers=False)

    with chain().stream("hi") as stream:
        assert stream.until_done().text == "hello"

    async def run() -> None:
        async with chain().astream("hi") as astream:
            assert (await astream.until_done()).text == "hello"
        while _opened:
            await _opened.pop().aclose()

    anyio.run(run, backend=both_backends)
    for root in otel.roots():
        first, second = otel.children(root)
        assert attrs(first)["modelmix.outcome"] == "error"
        assert attrs(first)["error.type"] in ("TransportError", "DeadlineExceededError")
        assert attrs(first)["gen_ai.response.finish_reasons"] == ("error",)
        assert attrs(second)["modelmix.outcome"] == "ok"


def test_a_model_that_cannot_be_a_dictionary_key_is_still_described(otel: Telemetry) -> None:
    class Unhashable(FunctionModel):
        def __eq__(self, other: object) -> bool:  # drops __hash__: no weak dictionary key
            return self is other

    model = Unhashable("hi", name="odd")
    model.chat("x")
    model.chat("x")
    del model
    gc.collect()  # the call records hold it in a cycle; suites that list live models can't hash it
    roots = otel.roots()
    assert [r.name for r in roots] == ["chat odd", "chat odd"]
    assert [[c.name for c in otel.children(r)] for r in roots] == [["chat odd"], ["chat odd"]]
