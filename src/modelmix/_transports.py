"""Which transport carries a provider's async calls: httpx's own (the default) or aiohttp's.

Both are an ``httpx.AsyncClient`` to the rest of modelmix, so the I/O driver, admission, timeouts
and error mapping are one code path. aiohttp is imported only when an aiohttp client is built —
on a model's first async call — never by ``import modelmix``.
"""

from __future__ import annotations

from typing import Literal

import httpx
import sniffio

from ._driver import DEFAULT_LIMITS, DEFAULT_TIMEOUT, new_httpx_async_client
from ._exceptions import ConfigurationError

__all__ = ["TRANSPORTS", "Transport", "check_transport", "new_async_client"]

Transport = Literal["httpx", "aiohttp"]
TRANSPORTS: tuple[Transport, ...] = ("httpx", "aiohttp")
_AIOHTTP_MODULES = ("aiohttp",)
_INSTALL_AIOHTTP = "pip install 'modelmix[aiohttp]'"


def check_transport(provider: str, value: object) -> None:
    """A `ConfigurationError` for a transport modelmix does not know, or whose packages are missing
    (found without importing them: building a model stays cheap)."""
    if value not in TRANSPORTS:
        raise ConfigurationError(f"{provider}: transport= takes 'httpx' (the default) or 'aiohttp', not {value!r}")
    if value == "aiohttp":
        import importlib.util

        missing = [name for name in _AIOHTTP_MODULES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigurationError(
                f"{provider}: transport='aiohttp' needs {' and '.join(missing)}, which is not installed: "
                f"{_INSTALL_AIOHTTP}"
            )


def new_async_client(provider: str, transport: Transport) -> httpx.AsyncClient:
    """A client with modelmix's timeouts and pool limits on `transport`, for the running event loop.

    aiohttp runs on asyncio only: under trio an aiohttp model refuses the call with a
    `ConfigurationError` rather than quietly switching to another transport.
    """
    if transport == "httpx":
        return new_httpx_async_client()
    library = sniffio.current_async_library()
    if library != "asyncio":
        raise ConfigurationError(
            f"{provider}: transport='aiohttp' runs on asyncio only, and this call runs on {library}; "
            "use transport='httpx' (the default) there"
        )
    try:
        from ._aiohttp_transport import AiohttpClient
    except ImportError as exc:  # uninstalled after the model was built, or a broken install
        raise ConfigurationError(
            f"{provider}: transport='aiohttp' could not import {exc.name or 'aiohttp'}: {_INSTALL_AIOHTTP}"
        ) from None
    return AiohttpClient(timeout=DEFAULT_TIMEOUT, limits=DEFAULT_LIMITS, follow_redirects=False)
