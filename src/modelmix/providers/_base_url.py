"""Checking a base URL before any client sees it.

httpx accepts many strings that can never work (``http://exa mple.com``, ``http://:80``) and
raises its own ``InvalidURL`` for others; and a URL carrying ``user:password@`` makes httpx send
Basic auth instead of the API key and print the password in its INFO request log. Every such
mistake is a `ConfigurationError` here, and no message ever shows the password.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import httpx

from .._exceptions import ConfigurationError

__all__ = ["check_base_url", "refuse_credentials", "without_credentials"]

_HOST_NAME = re.compile(r"[\w-]+(\.[\w-]+)*\.?")
_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def without_credentials(url: str) -> str:
    """`url` with any ``user:password@`` replaced by ``***@``, safe to show in a message or a log."""
    return _USERINFO.sub("***@", url)


def refuse_credentials(url: str, *, source: str, key_option: str = "api_key=") -> None:
    """A `ConfigurationError` when `url` (with or without a scheme) carries ``user:password@``."""
    if _USERINFO.search(url if "://" in url else f"//{url}"):
        raise ConfigurationError(
            f"{source} {without_credentials(url if '://' in url else f'//{url}')!r} contains credentials "
            f"(user:password@); modelmix does not send them. Remove them from the URL and pass the key "
            f"as {key_option}"
        )


def check_base_url(url: str, *, source: str, key_option: str = "api_key=") -> httpx.URL:
    """`url` parsed, or a `ConfigurationError` that says what is wrong with it and where it came
    from (`source`: ``"base_url="`` or the environment variable that held it)."""
    shown = without_credentials(url)

    def refuse(problem: str) -> ConfigurationError:
        return ConfigurationError(f"{source} {shown!r} is not a usable URL: {problem}")

    # Checked first so no later message can carry the secret.
    refuse_credentials(url, source=source, key_option=key_option)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise refuse(f"{error} (write it as http://host:port/path)") from None
    if parts.scheme not in ("http", "https"):
        raise refuse("it must start with http:// or https://")
    host = parts.hostname or ""
    if not host:
        raise refuse("it names no host (write it as http://host:port/path)")
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise refuse(f"[{host}] is not an IPv6 address") from None
    elif not _HOST_NAME.fullmatch(host):
        raise refuse(f"{host!r} is not a host name")
    if port == 0:
        raise refuse("port 0 is not a port")
    try:
        return httpx.URL(url)
    except httpx.InvalidURL as error:
        raise refuse(str(error)) from None
