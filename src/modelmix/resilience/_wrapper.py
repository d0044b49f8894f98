"""`WrapperModel`: the base of every model that wraps another one.

A wrapper names what it wraps (`wrapped`) and answers the model's identity (provider, name,
host, endpoint, context window) from it explicitly; nothing else is forwarded. To reach the
provider's own model (its ``base_url``, its HTTP clients...), use `unwrap()`.
"""

from __future__ import annotations

from .._model import Model

__all__ = ["WrapperModel"]


class WrapperModel(Model):
    """A `Model` that adds behaviour around `wrapped` (retries, a breaker, hedging...).

    ``provider``, ``name``, ``settings``, ``host``, ``endpoint`` and ``context_window`` are the
    wrapped model's, so per-endpoint state and attempt records name the real endpoint.
    ``unwrap()`` returns the innermost model::

        model = mm.model("openai:gpt-4o-mini")     # a retrying wrapper
        model.unwrap().base_url                    # the provider model's attribute
    """

    def __init__(self, wrapped: Model) -> None:
        self.wrapped = wrapped
        self.provider = wrapped.provider
        self.name = wrapped.name
        self.settings = wrapped.settings
        self.host = wrapped.host

    @property
    def context_window(self) -> int | None:
        return self.wrapped.context_window

    @property
    def endpoint(self) -> str:
        return self.wrapped.endpoint

    def unwrap(self) -> Model:
        return self.wrapped.unwrap()

    def close(self) -> None:
        self.wrapped.close()

    async def aclose(self) -> None:
        await self.wrapped.aclose()
