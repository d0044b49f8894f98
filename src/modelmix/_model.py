"""The `Model` interface every provider, wrapper and chain satisfies, so they compose."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from typing_extensions import Self, Unpack

from ._messages import MessagesInput
from ._response import ChatResponse
from ._settings import Settings

if TYPE_CHECKING:
    from ._profile import ModelProfile
    from ._streaming import AsyncStream, Stream

__all__ = ["Model"]


class Model(ABC):
    """A chat model: sync and async calls, sync and async streams.

    ``provider`` is the registry prefix (``openai``, ``azure``, ...) and ``name`` the model or
    deployment name, so ``f"{m.provider}:{m.name}"`` round-trips through `modelmix.model`.
    """

    provider: str
    name: str
    settings: Settings
    host: str | None = None
    """Where the server is, for models reached over the network: the host name, or ``host:port`` when
    the base URL names a port (so two servers on one machine can be told apart); None in-process."""

    @abstractmethod
    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        """Send the conversation and wait for the complete answer."""

    @abstractmethod
    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        """Async `chat`."""

    @abstractmethod
    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        """Stream the answer; use the result as a context manager."""

    @abstractmethod
    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        """Async `stream`; use the result as an async context manager."""

    @property
    def context_window(self) -> int | None:
        """The model's context window in tokens, where known (used by fallback chains)."""
        return None

    @property
    def endpoint(self) -> str:
        """Where this model's calls go, as ``scheme://host:port`` for network models (never a path,
        query or key); the provider name otherwise. Per-endpoint state (breakers, budgets) is keyed by it."""
        return self.provider

    @property
    def profile(self) -> ModelProfile:
        """What the model enforces (`ModelProfile`). A wrapper reports its innermost model's; a
        model that declares nothing gets the permissive default."""
        inner = self.unwrap()
        if inner is not self:
            return inner.profile
        from ._profile import PERMISSIVE  # imported on first use: `import modelmix` stays light

        return PERMISSIVE

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Refuse, without sending anything, call settings this model could never take
        (`ConfigurationError`). A fallback chain asks every member before calling the first, so
        an option one member can't take is not discovered only when the members before it fail.

        Every model gets the common checks of the settings' values; a model with options of its
        own (the in-process model's ``extra_body`` keys...) adds its checks. A wrapper asks the
        model it wraps."""
        inner = self.unwrap()
        if inner is not self:
            inner.check_settings(settings)
            return
        from ._settings import check_settings

        check_settings(settings)

    def unwrap(self) -> Model:
        """The model under every wrapper (retry, breaker, ...); a model that wraps nothing returns itself."""
        return self

    def close(self) -> None:  # noqa: B027 - optional hook: models without resources need nothing
        """Release network resources (connection pools). The model can't be used after."""

    async def aclose(self) -> None:
        """Async `close`."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}:{self.name}>"

    def _describe(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.name}
