"""The clients being compared, and the registry of contenders `run.py` picks from. Each makes the
same request to the same mock server and returns the same text, so a contender that parses wrongly
fails the run instead of winning it.

- ``httpx`` / ``httpx-async``: the baseline for everything on httpx, what one would write by hand:
  one ``httpx.Client``, ``json.dumps`` the body, ``json.loads`` the answer; streams via ``iter_lines``
  read to their end.
- ``aiohttp-async``: the baseline for everything on aiohttp, written the same way by hand: one
  ``aiohttp.ClientSession``, ``response.read()``, streams by iterating ``response.content``'s lines.
- ``modelmix`` / ``modelmix-async``: ``mm.model("openai:…")`` with ``chat``/``achat`` and
  ``stream``/``astream`` + ``text_deltas()``: what users get, retries and idle timeouts included.
- ``modelmix-bare`` / ``modelmix-bare-async``: the same with ``max_retries=0`` (the bare provider
  model, no resilience wrapper), to show what that layer costs.
- ``modelmix-aiohttp-async``: ``mm.model(..., transport="aiohttp")``, modelmix's async calls on
  aiohttp (the ``modelmix[aiohttp]`` extra); skipped when this modelmix refuses the option.
- the peers (openai SDK on httpx and on aiohttp, LiteLLM, pydantic-ai, aisuite): `bench_peers.py`.

Peers that are not installed are skipped and listed with the reason (``pip install -e ".[bench]"``
installs them).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from bench_base import (
    API_KEY,
    CHAT_MODEL,
    HEADERS,
    PROMPT,
    AsyncContender,
    SyncContender,
    request_body,
    sse_delta,
    sse_delta_bytes,
    stream_model,
)
from bench_peers import (
    AisuiteAsync,
    AisuiteSync,
    LiteLLMAsync,
    LiteLLMSync,
    OpenAIAioHttpAsync,
    OpenAIAsync,
    OpenAISync,
    PydanticAIAsync,
    openai_aiohttp_missing,
)

__all__ = [
    "CONTENDERS",
    "AsyncContender",
    "ContenderSpec",
    "SyncContender",
    "baselines_of",
    "stream_model",
    "unavailable",
]

# --------------------------------------------------------------------------------- raw httpx
# httpx is imported when a client is built, not here: the memory benchmark runs each contender in a
# fresh interpreter, and the clients that don't use httpx (aiohttp, the openai SDK's own fork of it)
# must not carry its import.


class HttpxSync(SyncContender):
    def __init__(self, base_url: str) -> None:
        import httpx

        self._client = httpx.Client()
        self._url = f"{base_url}/chat/completions"

    def chat(self) -> str:
        response = self._client.post(self._url, content=request_body(CHAT_MODEL, stream=False), headers=HEADERS)
        response.raise_for_status()
        text: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return text

    def stream(self, model: str) -> Iterator[str]:
        with self._client.stream(
            "POST", self._url, content=request_body(model, stream=True), headers=HEADERS
        ) as response:
            response.raise_for_status()
            # Read to the end (no break on [DONE]) so the connection goes back to the pool.
            for line in response.iter_lines():
                delta = sse_delta(line)
                if delta is not None:
                    yield delta

    def close(self) -> None:
        self._client.close()


class HttpxAsync(AsyncContender):
    def __init__(self, base_url: str) -> None:
        import httpx

        self._client = httpx.AsyncClient()
        self._url = f"{base_url}/chat/completions"

    async def chat(self) -> str:
        response = await self._client.post(self._url, content=request_body(CHAT_MODEL, stream=False), headers=HEADERS)
        response.raise_for_status()
        text: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return text

    async def stream(self, model: str) -> AsyncIterator[str]:
        async with self._client.stream(
            "POST", self._url, content=request_body(model, stream=True), headers=HEADERS
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                delta = sse_delta(line)
                if delta is not None:
                    yield delta

    async def close(self) -> None:
        await self._client.aclose()


# ------------------------------------------------------------------------------- raw aiohttp


class AiohttpAsync(AsyncContender):
    """Built inside the running event loop (`Bench.make` does that for every async contender):
    aiohttp binds a session to the loop it is made on."""

    def __init__(self, base_url: str) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession()
        self._url = f"{base_url}/chat/completions"

    async def chat(self) -> str:
        async with self._session.post(
            self._url, data=request_body(CHAT_MODEL, stream=False), headers=HEADERS
        ) as response:
            response.raise_for_status()
            text: str = json.loads(await response.read())["choices"][0]["message"]["content"]
        return text

    async def stream(self, model: str) -> AsyncIterator[str]:
        async with self._session.post(self._url, data=request_body(model, stream=True), headers=HEADERS) as response:
            response.raise_for_status()
            async for line in response.content:  # one line per iteration, read to the end
                delta = sse_delta_bytes(line)
                if delta is not None:
                    yield delta

    async def close(self) -> None:
        await self._session.close()


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


class ModelmixAioHttpAsync(ModelmixAsync):
    options: ClassVar[dict[str, Any]] = {"transport": "aiohttp"}


def modelmix_aiohttp_missing() -> str | None:
    """Why modelmix's aiohttp transport can't run here (this modelmix refuses the option), or None."""
    import modelmix

    try:
        model = modelmix.model(
            f"openai:{CHAT_MODEL}", base_url="http://127.0.0.1:9/v1", api_key=API_KEY, **ModelmixAioHttpAsync.options
        )
    except modelmix.ConfigurationError as error:
        return "not available: " + str(error).splitlines()[0]
    model.close()
    return None


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class ContenderSpec:
    name: str
    library: str
    """The import name (also what the import-time benchmark imports)."""
    is_async: bool
    factory: Callable[[str], SyncContender | AsyncContender]
    baseline: str
    """The raw-transport contender its ratios are taken against (the same transport, sync or async)."""
    requires: tuple[str, ...] = ()
    """Modules it needs besides `library`."""
    check: Callable[[], str | None] | None = None
    """Says why the contender can't run here (None when it can); called only when the modules are
    installed."""

    @property
    def transport(self) -> str:
        """ "httpx" or "aiohttp": the HTTP stack underneath, named after the baseline."""
        return self.baseline.removesuffix("-async")


CONTENDERS: list[ContenderSpec] = [
    ContenderSpec("httpx", "httpx", False, HttpxSync, "httpx"),
    ContenderSpec("modelmix", "modelmix", False, ModelmixSync, "httpx"),
    ContenderSpec("modelmix-bare", "modelmix", False, ModelmixBareSync, "httpx"),
    ContenderSpec("openai", "openai", False, OpenAISync, "httpx"),
    ContenderSpec("litellm", "litellm", False, LiteLLMSync, "httpx"),
    ContenderSpec("aisuite", "aisuite", False, AisuiteSync, "httpx"),
    ContenderSpec("httpx-async", "httpx", True, HttpxAsync, "httpx-async"),
    ContenderSpec("modelmix-async", "modelmix", True, ModelmixAsync, "httpx-async"),
    ContenderSpec("modelmix-bare-async", "modelmix", True, ModelmixBareAsync, "httpx-async"),
    ContenderSpec("openai-async", "openai", True, OpenAIAsync, "httpx-async"),
    ContenderSpec("litellm-async", "litellm", True, LiteLLMAsync, "httpx-async"),
    ContenderSpec("pydantic-ai-async", "pydantic_ai", True, PydanticAIAsync, "httpx-async"),
    ContenderSpec("aisuite-async", "aisuite", True, AisuiteAsync, "httpx-async"),
    ContenderSpec("aiohttp-async", "aiohttp", True, AiohttpAsync, "aiohttp-async"),
    ContenderSpec(
        "modelmix-aiohttp-async",
        "modelmix",
        True,
        ModelmixAioHttpAsync,
        "aiohttp-async",
        requires=("aiohttp",),
        check=modelmix_aiohttp_missing,
    ),
    ContenderSpec(
        "openai-aiohttp-async",
        "openai",
        True,
        OpenAIAioHttpAsync,
        "aiohttp-async",
        requires=("aiohttp",),
        check=openai_aiohttp_missing,
    ),
]
"""Every contender: the sync ones on httpx, the async ones on httpx, the async ones on aiohttp; each
group's baseline first."""


def unavailable(spec: ContenderSpec) -> str | None:
    """Why `spec` can't run here ("not installed: litellm", …), or None when it can."""
    for module in (spec.library, *spec.requires):
        if importlib.util.find_spec(module) is None:
            return f"not installed: {module}"
    return spec.check() if spec.check is not None else None


def baselines_of(specs: list[ContenderSpec]) -> set[str]:
    """The baselines the ratios of `specs` need."""
    return {spec.baseline for spec in specs}
