"""Where an Azure request goes: the four route forms, recognised from the endpoint URL (sans-I/O).

==================  ==============================================================  ==================
route               chat URL                                                        key header(s)
==================  ==============================================================  ==================
``v1``              ``{resource}/openai/v1/chat/completions``                       ``api-key``
``deployments``     ``{resource}/openai/deployments/{name}/chat/completions``       ``api-key``
                    ``?api-version=…``
``model-inference`` ``{endpoint}/chat/completions?api-version=2024-05-01-preview``  ``api-key`` and
                    (``*.models.ai.azure.com`` or ``…services.ai.azure.com/models``) ``Authorization``
``serverless-v1``   ``https://<name>.<region>.inference.ai.azure.com/v1/chat/…``    ``Authorization``
==================  ==============================================================  ==================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

import httpx

from .._exceptions import ConfigurationError
from ._base_url import check_base_url

__all__ = [
    "CLASSIC_API_VERSION",
    "MODEL_INFERENCE_API_VERSION",
    "ROUTES",
    "AzureRoute",
    "RouteName",
    "resolve_route",
]

RouteName = Literal["v1", "deployments", "model-inference", "serverless-v1"]
ROUTES: tuple[RouteName, ...] = ("v1", "deployments", "model-inference", "serverless-v1")

CLASSIC_API_VERSION = "2024-10-21"
"""Default ``api-version`` of the classic deployments route: the latest dated GA release of the
Azure OpenAI inference API (newer features ship on the v1 route, which needs no api-version)."""

MODEL_INFERENCE_API_VERSION = "2024-05-01-preview"
"""The only version the (retired) Azure AI Model Inference API ever shipped for chat."""

KeyStyle = Literal["api-key", "bearer", "both"]


@dataclass(frozen=True)
class AzureRoute:
    """One resolved route: everything the driver needs besides the body."""

    name: RouteName
    base_url: str
    """Ends with ``/``; the chat path ``chat/completions`` is relative to it."""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    key_style: KeyStyle = "api-key"
    send_model: bool = True
    """Whether the body carries ``model`` (a single-model serverless endpoint does not need it)."""
    info_url: str | None = None
    """``GET`` URL of the model-info document, where the route offers one."""

    @property
    def chat_url(self) -> str:
        url = httpx.URL(self.base_url).join("chat/completions")
        return str(url.copy_merge_params(self.query) if self.query else url)


_DEPLOYMENT_IN_PATH = re.compile(r"^(?P<root>.*?)/openai/deployments/(?P<name>[^/]+)(?:/.*)?$")
_SERVERLESS_MODELS = ".models.ai.azure.com"
_SERVERLESS_V1 = ".inference.ai.azure.com"


# The deployment name becomes one segment of the URL path. Other characters are percent-encoded,
# but "." and ".." are resolved away by URL normalisation, and a slash (even encoded: proxies
# decode %2F) or a control character would send the call to a different path of the resource.
_PATH_CHANGING = re.compile(r"[/\\\x00-\x1f\x7f]")


def _check_deployment_name(deployment: str) -> None:
    if set(deployment) <= {"."} or _PATH_CHANGING.search(deployment):
        raise ConfigurationError(
            f"{deployment!r} is not an Azure deployment name: use the deployment's name as the Azure "
            "portal shows it (letters, digits, '-', '_' and '.'), e.g. 'azure:gpt-4o-mini'"
        )


def resolve_route(
    endpoint: str,
    deployment: str,
    *,
    route: RouteName | None = None,
    api_version: str | None = None,
    classic_api_version: str | None = None,
) -> AzureRoute:
    """The route for `deployment` at `endpoint`.

    `route` forces a form; otherwise the URL decides (see the module table). `api_version` is an
    explicit choice and applies to any route; `classic_api_version` (from the environment) only to
    the deployments route.
    """
    if not isinstance(endpoint, str):
        raise ConfigurationError(
            "the Azure endpoint must be an https:// URL such as 'https://<resource>.openai.azure.com', "
            f"not {type(endpoint).__name__}"
        )
    url = check_base_url(
        endpoint.strip(),
        source="the Azure endpoint (endpoint= or AZURE_OPENAI_ENDPOINT)",
        key_option="api_key= (or set AZURE_OPENAI_API_KEY)",
    )
    if route is not None and route not in ROUTES:
        raise ConfigurationError(f"unknown Azure route {route!r}; use one of {', '.join(ROUTES)}")
    path = re.sub(r"/+", "/", url.path).rstrip("/")
    api_version = api_version or url.params.get("api-version") or None
    origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
    host = url.host.lower()

    found = _DEPLOYMENT_IN_PATH.match(path)
    if found:
        named = found["name"]
        if named != deployment and quote(deployment, safe="") != named:
            raise ConfigurationError(
                f"the endpoint URL names deployment {named!r} but the model string says {deployment!r}; "
                "give the resource endpoint (https://<resource>.openai.azure.com) or make them match"
            )
        path = found["root"]
        route = route or "deployments"
    elif path.endswith("/openai/v1"):
        path = path[: -len("/openai/v1")]
        route = route or "v1"
    elif path.endswith("/openai"):
        path = path[: -len("/openai")]

    if route is None:
        if path.endswith("/models") or host.endswith(_SERVERLESS_MODELS):
            route = "model-inference"
        elif host.endswith(_SERVERLESS_V1):
            route = "serverless-v1"
        else:
            route = "v1"

    if route == "v1":
        return AzureRoute(
            name="v1",
            base_url=f"{origin}{path}/openai/v1/",
            query={"api-version": api_version} if api_version else {},
        )
    if route == "deployments":
        _check_deployment_name(deployment)
        return AzureRoute(
            name="deployments",
            base_url=f"{origin}{path}/openai/deployments/{quote(deployment, safe='')}/",
            query={"api-version": api_version or classic_api_version or CLASSIC_API_VERSION},
        )
    if route == "model-inference":
        query = {"api-version": api_version or MODEL_INFERENCE_API_VERSION}
        base = f"{origin}{path}/"
        return AzureRoute(
            name="model-inference",
            base_url=base,
            query=query,
            # Without this header the API rejects any parameter outside its own schema (HTTP 422).
            headers={"extra-parameters": "pass-through"},
            key_style="both",
            # A `/models` endpoint hosts many deployments and routes on `model`; a serverless
            # endpoint is one model.
            send_model=path.endswith("/models"),
            info_url=str(httpx.URL(base).join("info").copy_merge_params(query)),
        )
    return AzureRoute(
        name="serverless-v1",
        base_url=f"{origin}{path or '/v1'}/",
        key_style="bearer",
        send_model=False,
    )
