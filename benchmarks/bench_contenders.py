"""The clients being compared. Each makes the same request to the same mock server and returns the
same text, so a contender that parses wrongly fails the run instead of winning it.

Every contender sends ``{"model", "messages": [one user message]}`` (plus ``"stream": true`` and
``stream_options.include_usage`` for streams, which modelmix and the openai SDK send by default) and
returns the answer's text, or yields the streamed text deltas in order.

- ``httpx`` / ``httpx-async``: the baseline, what one would write by hand: one ``httpx.Client``,
  ``json.dumps`` the body, ``json.loads`` the answer; streams via ``iter_lines`` read to their end.
- ``modelmix`` / ``modelmix-async``: ``mm.model("openai:…")`` with ``chat``/``achat`` and
  ``stream``/``astream`` + ``text_deltas()``: what users get, retries and idle timeouts included.
- ``modelmix-bare`` / ``modelmix-bare-async``: the same with ``max_retries=0`` (the bare provider
  model, no resilience wrapper), to show what that layer costs.
- ``openai`` / ``openai-async``: the official SDK (``max_retries=0``).
- ``pydantic-ai-async``: pydantic-ai's direct model API (``model_request``/``model_request_stream``)
  over its OpenAI chat model; async only (its sync API runs the async one on an event loop).
- ``aisuite`` / ``aisuite-async``: aisuite's ``Client`` (a thin layer over the openai SDK).

Peers that are not installed are skipped (``pip install -e ".[bench]"`` installs them).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

__all__ = ["API_KEY", "CONTENDERS", "PROMPT", "AsyncContender", "ContenderSpec", "SyncContender", "available"]

API_KEY = "sk-bench-not-a-real-key"
PROMPT = "Say something about benchmarks."
CHAT_MODEL = "bench-model"


def stream_model(chunks: int) -> str:
    """The model name that makes the mock server stream `chunks` content chunks."""
    return f"bench-stream-{chunks}"


class SyncContender:
    """A blocking client."""

    def chat(self) -> str:
        raise NotImplementedError

    def stream(self, model: str) -> Iterator[str]:
        raise NotImplementedError

    def close(self) -> None:
        return None


class AsyncContender:
    """An asyncio client; used on one long-lived event loop."""

    async def chat(self) -> str:
        raise NotImplementedError

    def stream(self, model: str) -> AsyncIterator[str]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _body(model: str, *, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


_HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def _delta_of(line: str) -> str | None:
    """The text in one SSE line, if it carries any (hand-written, as a raw-httpx user would)."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    choices = json.loads(line[6:])["choices"]
    if not choices:
        return None
    content: str | None = choices[0]["delta"].get("content")
    return content or None


# --------------------------------------------------------------------------------------- httpx


class HttpxSync(SyncContender):
    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client()
        self._url = f"{base_url}/chat/completions"

    def chat(self) -> str:
        response = self._client.post(self._url, content=_body(CHAT_MODEL, stream=False), headers=_HEADERS)
        response.raise_for_status()
        text: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return text

    def stream(self, model: str) -> Iterator[str]:
        with self._client.stream("POST", self._url, content=_body(model, stream=True), headers=_HEADERS) as response:
            response.raise_for_status()
            # Read to the end (no break on [DONE]) so the connection goes back to the pool.
            for line in response.iter_lines():
                delta = _delta_of(line)
                if delta is not None:
                    yield delta

    def close(self) -> None:
        self._client.close()


class HttpxAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        self._client = httpx.AsyncClient()
        self._url = f"{base_url}/chat/completions"

    async def chat(self) -> str:
        response = await self._client.post(self._url, content=_body(CHAT_MODEL, stream=False), headers=_HEADERS)
        response.raise_for_status()
        text: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return text

    async def stream(self, model: str) -> AsyncIterator[str]:
        async with self._client.stream(
            "POST", self._url, content=_body(model, stream=True), headers=_HEADERS
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                delta = _delta_of(line)
                if delta is not None:
                    yield delta

    async def close(self) -> None:
        await self._client.aclose()


# ------------------------------------------------------------------------------------ modelmix


class _ModelmixModels:
    """One modelmix model per model name, as an application would hold them."""

    def __init__(self, base_url: str, options: dict[str, Any]) -> None:
        import modelmix

        self._make = modelmix.model
        self._base_url = base_url
        self._options = options
        self._models: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        found = self._models.get(name)
        if found is None:
            found = self._models[name] = self._make(
                f"openai:{name}", base_url=self._base_url, api_key=API_KEY, **self._options
            )
        return found


class ModelmixSync(SyncContender):
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, base_url: str) -> None:
        self._models = _ModelmixModels(base_url, self.options)
        self._chat_model = self._models.get(CHAT_MODEL)

    def chat(self) -> str:
        text: str = self._chat_model.chat(PROMPT).text
        return text

    def stream(self, model: str) -> Iterator[str]:
        with self._models.get(model).stream(PROMPT) as stream:
            yield from stream.text_deltas()

    def close(self) -> None:
        for model in self._models._models.values():
            model.close()


class ModelmixAsync(AsyncContender):
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, base_url: str) -> None:
        self._models = _ModelmixModels(base_url, self.options)
        self._chat_model = self._models.get(CHAT_MODEL)

    async def chat(self) -> str:
        text: str = (await self._chat_model.achat(PROMPT)).text
        return text

    async def stream(self, model: str) -> AsyncIterator[str]:
        async with self._models.get(model).astream(PROMPT) as stream:
            async for delta in stream.text_deltas():
                yield delta

    async def close(self) -> None:
        for model in self._models._models.values():
            await model.aclose()


class ModelmixBareSync(ModelmixSync):
    options: ClassVar[dict[str, Any]] = {"max_retries": 0}


class ModelmixBareAsync(ModelmixAsync):
    options: ClassVar[dict[str, Any]] = {"max_retries": 0}


# -------------------------------------------------------------------------------------- openai

_MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]


class OpenAISync(SyncContender):
    def __init__(self, base_url: str) -> None:
        import openai

        self._client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)

    def chat(self) -> str:
        completion = self._client.chat.completions.create(model=CHAT_MODEL, messages=_MESSAGES)
        return completion.choices[0].message.content or ""

    def stream(self, model: str) -> Iterator[str]:
        chunks = self._client.chat.completions.create(
            model=model, messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        with chunks:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def close(self) -> None:
        self._client.close()


class OpenAIAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        import openai

        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)

    async def chat(self) -> str:
        completion = await self._client.chat.completions.create(model=CHAT_MODEL, messages=_MESSAGES)
        return completion.choices[0].message.content or ""

    async def stream(self, model: str) -> AsyncIterator[str]:
        chunks = await self._client.chat.completions.create(
            model=model, messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async with chunks:
            async for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    async def close(self) -> None:
        await self._client.close()


# ---------------------------------------------------------------------------------- pydantic-ai


class PydanticAIAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        from pydantic_ai import ModelRequest
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        self._provider = OpenAIProvider(base_url=base_url, api_key=API_KEY)
        self._model_class = OpenAIChatModel
        self._messages = [ModelRequest.user_text_prompt(PROMPT)]
        self._models: dict[str, Any] = {}

    def _model(self, name: str) -> Any:
        found = self._models.get(name)
        if found is None:
            found = self._models[name] = self._model_class(name, provider=self._provider)
        return found

    async def chat(self) -> str:
        from pydantic_ai import TextPart
        from pydantic_ai.direct import model_request

        response = await model_request(self._model(CHAT_MODEL), self._messages)
        return "".join(part.content for part in response.parts if isinstance(part, TextPart))

    async def stream(self, model: str) -> AsyncIterator[str]:
        from pydantic_ai import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
        from pydantic_ai.direct import model_request_stream

        async with model_request_stream(self._model(model), self._messages) as events:
            async for event in events:
                if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart) and event.part.content:
                    yield event.part.content
                elif (
                    isinstance(event, PartDeltaEvent)
                    and isinstance(event.delta, TextPartDelta)
                    and event.delta.content_delta
                ):
                    yield event.delta.content_delta

    async def close(self) -> None:
        await self._provider.client.close()


# -------------------------------------------------------------------------------------- aisuite


def _aisuite_client(base_url: str) -> Any:
    import aisuite

    return aisuite.Client({"openai": {"api_key": API_KEY, "base_url": base_url, "max_retries": 0}})


class AisuiteSync(SyncContender):
    def __init__(self, base_url: str) -> None:
        self._client = _aisuite_client(base_url)

    def chat(self) -> str:
        completion = self._client.chat.completions.create(model=f"openai:{CHAT_MODEL}", messages=_MESSAGES)
        text: str = completion.choices[0].message.content or ""
        return text

    def stream(self, model: str) -> Iterator[str]:
        chunks = self._client.chat.completions.create(
            model=f"openai:{model}", messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    def close(self) -> None:
        for provider in self._client.providers.values():
            provider.client.close()


class AisuiteAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        self._client = _aisuite_client(base_url)

    async def chat(self) -> str:
        completion = await self._client.chat.completions.acreate(model=f"openai:{CHAT_MODEL}", messages=_MESSAGES)
        text: str = completion.choices[0].message.content or ""
        return text

    async def stream(self, model: str) -> AsyncIterator[str]:
        chunks = await self._client.chat.completions.acreate(
            model=f"openai:{model}", messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    async def close(self) -> None:
        for provider in self._client.providers.values():
            await provider.aclient.close()


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class ContenderSpec:
    name: str
    library: str
    """The import name (also what the import-time benchmark imports)."""
    is_async: bool
    factory: Callable[[str], SyncContender | AsyncContender]
    baseline: str
    """The contender its ratios are taken against."""


CONTENDERS: list[ContenderSpec] = [
    ContenderSpec("httpx", "httpx", False, HttpxSync, "httpx"),
    ContenderSpec("modelmix", "modelmix", False, ModelmixSync, "httpx"),
    ContenderSpec("modelmix-bare", "modelmix", False, ModelmixBareSync, "httpx"),
    ContenderSpec("openai", "openai", False, OpenAISync, "httpx"),
    ContenderSpec("aisuite", "aisuite", False, AisuiteSync, "httpx"),
    ContenderSpec("httpx-async", "httpx", True, HttpxAsync, "httpx-async"),
    ContenderSpec("modelmix-async", "modelmix", True, ModelmixAsync, "httpx-async"),
    ContenderSpec("modelmix-bare-async", "modelmix", True, ModelmixBareAsync, "httpx-async"),
    ContenderSpec("openai-async", "openai", True, OpenAIAsync, "httpx-async"),
    ContenderSpec("pydantic-ai-async", "pydantic_ai", True, PydanticAIAsync, "httpx-async"),
    ContenderSpec("aisuite-async", "aisuite", True, AisuiteAsync, "httpx-async"),
]
"""Every contender, baselines first."""


def available(spec: ContenderSpec) -> bool:
    """True when the contender's library is installed."""
    return importlib.util.find_spec(spec.library) is not None
