"""The peer clients modelmix is compared with, each used the way its documentation shows.

- ``openai`` / ``openai-async``: the official SDK (``max_retries=0``) on its default transport.
- ``openai-aiohttp-async``: the same async client on the SDK's own aiohttp option
  (``http_client=openai.DefaultAioHttpClient()``, from ``openai[aiohttp]``).
- ``litellm`` / ``litellm-async``: ``litellm.completion`` / ``acompletion`` with the mock server as an
  OpenAI-compatible endpoint (``model="openai/<name>", api_base=...``), LiteLLM's defaults otherwise.
- ``pydantic-ai-async``: pydantic-ai's direct model API (``model_request``/``model_request_stream``)
  over its OpenAI chat model; async only (its sync API runs the async one on an event loop).
- ``aisuite`` / ``aisuite-async``: aisuite's ``Client`` (a thin layer over the openai SDK).

Each module is imported when its contender is built, so a peer that is not installed costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bench_base import API_KEY, CHAT_MODEL, MESSAGES, PROMPT, AsyncContender, SyncContender

__all__ = [
    "AisuiteAsync",
    "AisuiteSync",
    "LiteLLMAsync",
    "LiteLLMSync",
    "OpenAIAioHttpAsync",
    "OpenAIAsync",
    "OpenAISync",
    "PydanticAIAsync",
    "openai_aiohttp_missing",
]

_STREAM_OPTIONS: Any = {"include_usage": True}


def _text_of(completion: Any) -> str:
    text: str = completion.choices[0].message.content or ""
    return text


def _delta_text(chunk: Any) -> str | None:
    """The text of one OpenAI-shaped stream chunk (the SDKs' typed chunk objects)."""
    if chunk.choices:
        content: str | None = chunk.choices[0].delta.content
        return content or None
    return None


# -------------------------------------------------------------------------------------- openai


class OpenAISync(SyncContender):
    def __init__(self, base_url: str) -> None:
        import openai

        self._client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)

    def chat(self) -> str:
        return _text_of(self._client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES))

    def stream(self, model: str) -> Iterator[str]:
        chunks = self._client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        )
        with chunks:
            for chunk in chunks:
                if (text := _delta_text(chunk)) is not None:
                    yield text

    def close(self) -> None:
        self._client.close()


class OpenAIAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        import openai

        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, **self._options())

    @staticmethod
    def _options() -> dict[str, Any]:
        return {}

    async def chat(self) -> str:
        return _text_of(await self._client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES))

    async def stream(self, model: str) -> AsyncIterator[str]:
        chunks = await self._client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        )
        async with chunks:
            async for chunk in chunks:
                if (text := _delta_text(chunk)) is not None:
                    yield text

    async def close(self) -> None:
        await self._client.close()


class OpenAIAioHttpAsync(OpenAIAsync):
    @staticmethod
    def _options() -> dict[str, Any]:
        import openai

        return {"http_client": openai.DefaultAioHttpClient()}


def openai_aiohttp_missing() -> str | None:
    """Why the openai SDK's aiohttp option can't run here, or None when it can."""
    import openai

    if not hasattr(openai, "DefaultAioHttpClient"):
        return f"openai {openai.__version__} has no DefaultAioHttpClient"
    try:
        import aiohttp  # noqa: F401  # what the SDK's option needs (the openai[aiohttp] extra)
    except ImportError:
        return "aiohttp is not installed (pip install 'openai[aiohttp]')"
    return None


# ------------------------------------------------------------------------------------- litellm


def _litellm() -> Any:
    # Imported by name: the bench extra installs LiteLLM, the dev extra (what CI type-checks with)
    # does not, and this keeps mypy from needing it.
    return importlib.import_module("litellm")


def _litellm_request(base_url: str, model: str, *, stream: bool) -> dict[str, Any]:
    """The arguments of a `litellm.completion` call. The "openai/" prefix makes LiteLLM treat
    api_base as an OpenAI-compatible endpoint."""
    request: dict[str, Any] = {
        "model": f"openai/{model}",
        "api_base": base_url,
        "api_key": API_KEY,
        "messages": MESSAGES,
    }
    if stream:
        request["stream"] = True
        request["stream_options"] = _STREAM_OPTIONS
    return request


class _LiteLLMClients:
    """LiteLLM keeps the SDK clients it makes in a module-level cache shared by every caller. A
    contender must start with fresh connections (the connections and concurrency sections count
    them) and must not leave sockets open, so `close` closes and forgets the clients of its kind."""

    def __init__(self, client_type: str) -> None:
        import openai

        self._cache = _litellm().in_memory_llm_clients_cache
        self._type = getattr(openai, client_type)

    def take(self) -> list[Any]:
        mine = [key for key, value in self._cache.cache_dict.items() if isinstance(value, self._type)]
        return [client for key in mine if (client := self._forget(key)) is not None]

    def _forget(self, key: str) -> Any:
        self._cache.ttl_dict.pop(key, None)
        return self._cache.cache_dict.pop(key, None)


class LiteLLMSync(SyncContender):
    def __init__(self, base_url: str) -> None:
        self._completion = _litellm().completion
        self._base_url = base_url
        self._clients = _LiteLLMClients("OpenAI")

    def chat(self) -> str:
        return _text_of(self._completion(**_litellm_request(self._base_url, CHAT_MODEL, stream=False)))

    def stream(self, model: str) -> Iterator[str]:
        chunks = self._completion(**_litellm_request(self._base_url, model, stream=True))
        for chunk in chunks:
            if (text := _delta_text(chunk)) is not None:
                yield text

    def close(self) -> None:
        for client in self._clients.take():
            client.close()


class LiteLLMAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        self._completion = _litellm().acompletion
        self._base_url = base_url
        self._clients = _LiteLLMClients("AsyncOpenAI")

    async def chat(self) -> str:
        return _text_of(await self._completion(**_litellm_request(self._base_url, CHAT_MODEL, stream=False)))

    async def stream(self, model: str) -> AsyncIterator[str]:
        chunks = await self._completion(**_litellm_request(self._base_url, model, stream=True))
        async for chunk in chunks:
            if (text := _delta_text(chunk)) is not None:
                yield text

    async def close(self) -> None:
        for client in self._clients.take():
            await client.close()


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
        return _text_of(self._client.chat.completions.create(model=f"openai:{CHAT_MODEL}", messages=MESSAGES))

    def stream(self, model: str) -> Iterator[str]:
        chunks = self._client.chat.completions.create(
            model=f"openai:{model}", messages=MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        )
        for chunk in chunks:
            if (text := _delta_text(chunk)) is not None:
                yield text

    def close(self) -> None:
        for provider in self._client.providers.values():
            provider.client.close()


class AisuiteAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        self._client = _aisuite_client(base_url)

    async def chat(self) -> str:
        return _text_of(await self._client.chat.completions.acreate(model=f"openai:{CHAT_MODEL}", messages=MESSAGES))

    async def stream(self, model: str) -> AsyncIterator[str]:
        chunks = await self._client.chat.completions.acreate(
            model=f"openai:{model}", messages=MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        )
        async for chunk in chunks:
            if (text := _delta_text(chunk)) is not None:
                yield text

    async def close(self) -> None:
        for provider in self._client.providers.values():
            await provider.aclient.close()
