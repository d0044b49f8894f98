"""`Provider`: one backend — where it is, how to authenticate, what its models can do, how to
build them and how to list them. The registry, `modelmix.list_models` and ``modelmix models`` all
read providers from one table, so a provider registered by a plugin shows up everywhere.

A provider over HTTP is mostly data (class attributes); the hooks below exist for the backends
that need more (Azure's routes, Ollama's native wire format, discovery of a server's limits).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio.lowlevel
import httpx
from pydantic import SecretStr
from typing_extensions import TypedDict, Unpack

from .._admission import admit
from .._auth import APIKeyAuth, Auth, NoAuth, resolve_secret
from .._catalog_limits import catalog_limits
from .._driver import DEFAULT_LIMITS, new_sync_client
from .._exceptions import ConfigurationError
from .._profile import FamilyTable, ModelProfile, ProfileOverride, build_profile, family_fields
from .._settings import check_headers, check_timeout
from .._transports import Transport, check_transport, new_async_client
from ._base_url import check_base_url
from ._listing import AvailableModel, aget_json, alist_with, get_json, list_with, listing_request

if TYPE_CHECKING:
    from .._codec import WireCodec
    from .._model import Model

__all__ = [
    "ConnectionOptions",
    "Provider",
    "check_connection_options",
    "model_option_names",
    "reject_unknown_options",
    "split_connection_options",
]


class ConnectionOptions(TypedDict, total=False):
    """Options that say where a backend is and how to reach it (they go to the `Provider`)."""

    base_url: str | None
    api_key: str | SecretStr | None
    auth: Auth | None
    """A ready credential (a token provider, a custom header...); replaces ``api_key``."""
    default_headers: Mapping[str, str] | None
    timeout: httpx.Timeout | float | None
    http_client: httpx.Client | None
    async_http_client: httpx.AsyncClient | None
    transport: Literal["httpx", "aiohttp"] | None
    """What carries async calls: ``"httpx"`` (the default) or ``"aiohttp"`` (asyncio only, needs the
    ``modelmix[aiohttp]`` extra). Sync calls always use httpx; ``async_http_client=`` wins over it."""


_CONNECTION_KEYS = frozenset(ConnectionOptions.__annotations__)


def split_connection_options(options: Mapping[str, Any]) -> tuple[ConnectionOptions, dict[str, Any]]:
    """``(connection options, everything else)``."""
    connection: dict[str, Any] = {k: v for k, v in options.items() if k in _CONNECTION_KEYS}
    rest = {k: v for k, v in options.items() if k not in _CONNECTION_KEYS}
    return ConnectionOptions(**connection), rest  # type: ignore[typeddict-item]


def check_connection_options(provider: str, options: Mapping[str, Any]) -> None:
    """The types of the connection options, so a mistake is a `ConfigurationError` naming the
    option rather than an ``AttributeError`` from deep inside a client."""
    expected: tuple[tuple[str, tuple[type, ...], str], ...] = (
        ("api_key", (str, SecretStr), "a string or a pydantic SecretStr"),
        ("auth", (Auth,), "a modelmix Auth (e.g. one from the Azure token helpers)"),
        ("http_client", (httpx.Client,), "an httpx.Client"),
        ("async_http_client", (httpx.AsyncClient,), "an httpx.AsyncClient"),
    )
    for option, types, accepted in expected:
        value = options.get(option)
        if value is not None and not isinstance(value, types):
            # The value itself is not shown: it may be a key of the wrong type.
            raise ConfigurationError(f"{provider}: {option}= takes {accepted}, not {type(value).__name__}")
    if options.get("default_headers") is not None:
        check_headers(f"{provider}: default_headers=", options["default_headers"])
    if options.get("timeout") is not None:
        check_timeout(f"{provider}: timeout=", options["timeout"])
    if options.get("transport") is not None:
        check_transport(provider, options["transport"])


def reject_unknown_options(provider: str, options: Mapping[str, Any], known: Iterable[str], *named: str) -> None:
    """A `ConfigurationError` for any option not in `known`, with the nearest known name as a
    suggestion (`named`: the model's own keyword parameters, offered as suggestions too), rather
    than a ``TypeError`` naming an internal class."""
    accepted = frozenset(known)
    unknown = sorted(set(options) - accepted)
    if not unknown:
        return
    import difflib

    if "max_retries" in unknown:
        # Only mm.model() takes it (it wraps the model it builds); a model class built directly
        # gets its retries from a wrapper.
        raise ConfigurationError(
            f"{provider}: max_retries= is an option of mm.model(...), not of a model class built "
            "directly; wrap this model instead: mm.retrying(model, max_retries=...)"
        )
    choices = sorted(accepted | set(named) | {"max_retries"})
    guesses = {key: difflib.get_close_matches(key, choices, n=1) for key in unknown}
    hints = "".join(f" Did you mean {guess[0]!r}?" for guess in guesses.values() if guess)
    raise ConfigurationError(
        f"{provider}: unknown option(s) {', '.join(map(repr, unknown))}.{hints} "
        f"Options {provider} models take: {', '.join(choices)}"
    )


def model_option_names() -> frozenset[str]:
    """The options every HTTP model takes: the connection's and the model's own."""
    from .._http import HTTPModelOptions  # _http builds on this module

    return frozenset(HTTPModelOptions.__annotations__)


class Provider:
    """A backend reached over HTTP. Subclass it, set the class attributes, register it::

        class AcmeProvider(Provider):
            name = "acme"  # the registry prefix: mm.model("acme:<model>")
            default_base_url = "http://127.0.0.1:9000/v1"
            base_url_env = "ACME_BASE_URL"
            api_key_env = "ACME_API_KEY"

        mm.register_provider("acme", AcmeProvider)

    By default it speaks OpenAI's chat completions and lists models with ``GET {base}/models``.
    """

    name: ClassVar[str] = ""
    """The registry prefix (``"openai"``, ``"ollama"``...)."""
    label: ClassVar[str] = ""
    """A human name for messages and listings."""
    default_base_url: ClassVar[str | None] = None
    """Where the server is when neither ``base_url=`` nor `base_url_env` says (None: required)."""
    base_url_env: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None
    api_key_required: ClassVar[bool] = False
    """A cloud service: without a key nothing works (and ``modelmix models`` never calls it)."""
    missing_key_hint: ClassVar[str] = ""
    """Appended to the "needs an API key" message."""
    api_root: ClassVar[str] = ""
    """A path the API is mounted under (``/v1``), added when a base URL is given as ``http://host:port``."""
    listing_path: ClassVar[str | None] = "models"
    """Where ``GET`` lists the models, relative to the base URL (None: the backend can't list)."""
    families: ClassVar[FamilyTable] = ()
    """The family table: model-name patterns → profile fields."""
    profile_defaults: ClassVar[Mapping[str, Any]] = {}
    """Profile fields every model of this backend gets (what the server enforces or repairs)."""
    named_profiles: ClassVar[Mapping[str, ModelProfile]] = {}
    """Profiles ``profile="<family>"`` may name."""
    in_process: ClassVar[bool] = False
    """Runs in this process (no server to probe)."""
    catalog_limits: ClassVar[bool] = False
    """The model catalog's entry for a model name describes what this backend serves under that name
    (a vendor's API, not a server you run): its window, output limit and missing capabilities
    narrow the profile."""
    requires: ClassVar[str | None] = None
    """A module the provider needs (``modelmix models`` reports it "not installed" without it)."""
    install_hint: ClassVar[str] = ""
    """How to install what the provider needs."""
    default_transport: ClassVar[Transport] = "httpx"
    """What carries async calls when ``transport=`` is not given (``"httpx"`` or ``"aiohttp"``)."""
    own_prices: ClassVar[bool] = False
    """The vendor sells at its own prices: the built-in catalog (OpenAI's and Azure's list prices)
    gives its models their limits but not their cost; register prices with
    `mm.register_model_info` (or the server reports the cost)."""
    encrypted_reasoning: ClassVar[bool] = True
    """On the Responses API, reasoning models are asked for their reasoning encrypted so that it
    travels with the conversation (False where the server is not known to take the request)."""

    def __init__(self, **options: Unpack[ConnectionOptions]) -> None:
        check_connection_options(self.name, options)
        self.base_url = httpx.URL(self.resolve_base_url(options.get("base_url")).rstrip("/") + "/")
        self.host: str = self.base_url.host
        given_auth = options.get("auth")
        self.auth: Auth = given_auth if given_auth is not None else self.resolve_auth(options.get("api_key"))
        self.headers: dict[str, str] = {**self.default_headers(), **(options.get("default_headers") or {})}
        self.timeout = options.get("timeout")
        self._client = options.get("http_client")
        self._owns_client = self._client is None
        self._aclient = options.get("async_http_client")
        self._owns_aclient = self._aclient is None
        self._aclient_token: object | None = None
        self.transport: Transport = options.get("transport") or self.default_transport

    # ------------------------------------------------------------------------- configuration

    @classmethod
    def environment(cls) -> tuple[str, ...]:
        """The environment variables this provider reads."""
        return tuple(name for name in (cls.base_url_env, cls.api_key_env) if name)

    @classmethod
    def configured_base_url(cls) -> str | None:
        """The base URL without arguments, or None when the provider is not configured at all."""
        if cls.default_base_url is None and not (cls.base_url_env and os.environ.get(cls.base_url_env)):
            return None
        return cls.resolve_base_url(None)

    @classmethod
    def resolve_base_url(cls, given: str | None) -> str:
        """``base_url=``, then `base_url_env`, then `default_base_url`."""
        from_env = os.environ.get(cls.base_url_env) if cls.base_url_env else None
        url = given or from_env or cls.default_base_url
        if not url:
            where = f" or set {cls.base_url_env}" if cls.base_url_env else ""
            raise ConfigurationError(f"{cls.name}: no base URL; pass base_url='http://host:port/v1'{where}")
        if not isinstance(url, str):
            raise ConfigurationError(
                f"{cls.name}: base_url= takes a string like 'http://host:port/v1', not {type(url).__name__}"
            )
        source = "base_url=" if given else (f"{cls.base_url_env}" if from_env else "the default base URL")
        key_option = f"api_key= (or set {cls.api_key_env})" if cls.api_key_env else "api_key="
        parsed = check_base_url(
            url.strip() if "://" in url else f"http://{url.strip()}",
            source=f"{cls.name}: {source}",
            key_option=key_option,
        )
        if cls.api_root and parsed.path in ("", "/"):
            parsed = parsed.copy_with(path=cls.api_root)
        return str(parsed)

    def resolve_auth(self, api_key: str | SecretStr | None) -> Auth:
        """A bearer key from ``api_key=`` or `api_key_env`; no credential when neither is set."""
        secret = resolve_secret(api_key, *((self.api_key_env,) if self.api_key_env else ()))
        if secret is None and self.api_key_required:
            raise ConfigurationError(
                f"{self.label or self.name} needs an API key: set the {self.api_key_env} environment variable "
                f"or pass api_key=...{self.missing_key_hint}"
            )
        return APIKeyAuth(secret) if secret is not None else NoAuth()

    def default_headers(self) -> dict[str, str]:
        """Headers every request carries (besides auth and the user's ``default_headers``)."""
        return {}

    def query(self) -> Mapping[str, str] | None:
        """Query parameters every chat request carries (Azure's ``api-version``)."""
        return None

    def model_profile(
        self, model_name: str, *, discovered: Mapping[str, Any] | None = None, override: ProfileOverride = None
    ) -> ModelProfile:
        """The profile of `model_name`: provider defaults → its family table → discovery → override,
        each more specific than the one before (a family can take back what the backend allows)."""
        family = family_fields(model_name, self.families)
        catalog = catalog_limits(model_name) if self.catalog_limits else {}
        layers = (self.profile_defaults, family, catalog, discovered or {})
        return build_profile(layers, override, named=self.named_profiles)

    def codec(self, model_name: str) -> WireCodec:
        """The wire format for one model (OpenAI chat completions unless overridden)."""
        from ._openai_wire import OpenAIChatCodec

        return OpenAIChatCodec()

    def responses_codec(self, model_name: str) -> WireCodec:
        """The wire format of ``api="responses"``: the Responses API at ``{base}/responses``
        (OpenAI, Azure's v1 route, Open Responses servers)."""
        from ._responses_wire import ResponsesCodec

        return ResponsesCodec(encrypted_reasoning=self.encrypted_reasoning)

    # ------------------------------------------------------------------------- models

    @classmethod
    def create_model(cls, name: str, **options: Any) -> Model:
        """Build a model from ``"<name>:<model>"`` options: connection options configure the
        provider; the rest (``settings=``, ``profile=``, ``context_window=``) the model."""
        from .._http import HTTPModel

        reject_unknown_options(cls.name, options, model_option_names())
        connection, rest = split_connection_options(options)
        return HTTPModel(name, provider=cls(**connection), **rest)

    # ------------------------------------------------------------------------- discovery

    def discovery_request(self, model_name: str) -> httpx.Request | None:
        """The request whose answer tells this server's limits (None: the server can't tell)."""
        return None

    def profile_from_discovery(self, data: Any) -> Mapping[str, Any]:
        """Profile fields read from the discovery answer."""
        return {}

    # ------------------------------------------------------------------------- listing

    @classmethod
    def available(cls, **options: Any) -> list[AvailableModel]:
        """The models the backend configured by `options` offers (``mm.list_models(prefix)``)."""
        return list_with(cls, **options)

    @classmethod
    async def aavailable(cls, **options: Any) -> list[AvailableModel]:
        """Async `available`."""
        return await alist_with(cls, **options)

    def list_models(self) -> list[AvailableModel]:
        """The models this backend offers right now."""
        return self.parse_models(get_json(self.sync_client(), self._listing_request(), provider=self.name))

    async def alist_models(self) -> list[AvailableModel]:
        """Async `list_models`."""
        return self.parse_models(await aget_json(self.async_client(), self._listing_request(), provider=self.name))

    def parse_models(self, data: Any) -> list[AvailableModel]:
        """The listing answer as models (OpenAI's ``{"data": [{"id": ...}]}`` unless overridden)."""
        entries = data.get("data") if isinstance(data, Mapping) else None
        models: list[AvailableModel] = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping) or not entry.get("id"):
                continue
            created = entry.get("created")
            owner = entry.get("owned_by")
            models.append(
                AvailableModel(
                    provider=self.name,
                    id=str(entry["id"]),
                    owned_by=owner if isinstance(owner, str) else None,
                    created=created if isinstance(created, int) else None,
                    details={k: v for k, v in entry.items() if k not in ("id", "object", "owned_by", "created")},
                )
            )
        return models

    def _listing_request(self) -> httpx.Request:
        if self.listing_path is None:
            raise ConfigurationError(f"{self.name}: this backend cannot list its models")
        headers = {"accept": "application/json", **self.headers, **self.auth.headers()}
        return listing_request(self.base_url.join(self.listing_path), headers, self.timeout)

    # ------------------------------------------------------------------------- clients

    def sync_client(self) -> httpx.Client:
        """The sync client (the user's, or one this provider owns)."""
        if self._client is None:
            self._client = new_sync_client()
        return self._client

    def async_client(self) -> httpx.AsyncClient:
        """The async client. An AsyncClient's connections belong to the event loop that opened
        them, so a provider used from several loops (asyncio.run twice, or trio) gets one per loop."""
        token = _event_loop_token()
        if self._aclient is None or (self._owns_aclient and self._aclient_token != token):
            self._aclient = admit(new_async_client(self.name, self.transport), DEFAULT_LIMITS.max_connections or 100)
            self._aclient_token = token
        return self._aclient

    def close(self) -> None:
        """Close the sync client if this provider made it."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the clients this provider made."""
        self.close()
        if self._aclient is not None and self._owns_aclient:
            await self._aclient.aclose()
            self._aclient = None

    def __del__(self) -> None:
        # Dropped without close(): give idle sync connections back now rather than leaving open
        # sockets to the garbage collector. (An async pool can only be closed from its loop.)
        client = getattr(self, "_client", None)
        if client is not None and getattr(self, "_owns_client", False):
            client.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self.base_url} auth={self.auth!r}>"


def _event_loop_token() -> object:
    """What tells the running event loop apart: asyncio's loop itself (a C call: this runs on every
    async call), else anyio's token for it (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return anyio.lowlevel.current_token()
