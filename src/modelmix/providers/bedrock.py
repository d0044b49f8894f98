"""Amazon Bedrock's OpenAI-compatible Chat Completions endpoint (``bedrock:<model id>``).

Chat goes to ``https://bedrock-runtime.<region>.amazonaws.com/openai/v1/chat/completions``; the
region comes from ``region=``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and ``BEDROCK_BASE_URL``
(or ``base_url=``) replaces the whole address, e.g. with Bedrock's ``bedrock-mantle`` endpoint.

Credentials, first found wins:

- a Bedrock API key: ``api_key=`` or ``AWS_BEARER_TOKEN_BEDROCK``, sent as a bearer token;
- otherwise AWS credentials (the usual chain: environment, profile, SSO, instance role) and a
  SigV4 signature on every request, through the optional AWS extra (``pip install
  'modelmix[aws]'``, botocore), imported only then. Signing needs modelmix's own HTTP clients:
  with ``http_client=``/``async_http_client=`` use an API key.
"""

from __future__ import annotations

import importlib
import os
from typing import ClassVar

import httpx
from pydantic import SecretStr
from typing_extensions import Unpack

from .._auth import Auth, NoAuth, resolve_secret
from .._exceptions import ConfigurationError, MissingDependencyError
from ._cloud_base import CloudProvider
from ._provider import ConnectionOptions

__all__ = ["BedrockProvider", "bedrock_base_url"]

SIGNING_NAME = "bedrock"
_SIGNED_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")


def bedrock_base_url(region: str) -> str:
    """The OpenAI-compatible address of Bedrock in `region`."""
    return f"https://bedrock-runtime.{region}.amazonaws.com/openai/v1"


class BedrockProvider(CloudProvider):
    """Bedrock's OpenAI-compatible endpoint with a Bedrock API key, or SigV4 with AWS credentials."""

    name = "bedrock"
    label = "Amazon Bedrock"
    base_url_env = "BEDROCK_BASE_URL"
    api_key_env = "AWS_BEARER_TOKEN_BEDROCK"
    provider_options = ("region",)
    encrypted_reasoning = False  # not known to take ``include: reasoning.encrypted_content``
    region_envs: ClassVar[tuple[str, ...]] = ("AWS_REGION", "AWS_DEFAULT_REGION")

    def __init__(self, *, region: str | None = None, **options: Unpack[ConnectionOptions]) -> None:
        self.region = region or next((os.environ[n] for n in self.region_envs if os.environ.get(n)), None)
        if options.get("base_url") is None and not os.environ.get("BEDROCK_BASE_URL"):
            if not self.region:
                raise ConfigurationError(
                    "bedrock: no AWS region; pass region='us-east-1' or set AWS_REGION "
                    "(or give the whole address as base_url=/BEDROCK_BASE_URL)"
                )
            options["base_url"] = bedrock_base_url(self.region)
        self._signer: _SigV4Signer | None = None
        self._uses_own_clients = options.get("http_client") is None and options.get("async_http_client") is None
        super().__init__(**options)

    @classmethod
    def environment(cls) -> tuple[str, ...]:
        return (*super().environment(), *cls.region_envs)

    @classmethod
    def configured_base_url(cls) -> str | None:
        region = next((os.environ[n] for n in cls.region_envs if os.environ.get(n)), None)
        if os.environ.get("BEDROCK_BASE_URL") or not region:
            return super().configured_base_url()
        return bedrock_base_url(region)

    def resolve_auth(self, api_key: str | SecretStr | None) -> Auth:
        if resolve_secret(api_key, "AWS_BEARER_TOKEN_BEDROCK") is not None:
            return super().resolve_auth(api_key)
        if not self._uses_own_clients:
            raise ConfigurationError(
                "bedrock: with http_client=/async_http_client= pass a Bedrock API key (api_key= or "
                "AWS_BEARER_TOKEN_BEDROCK); SigV4 signing works on the clients modelmix makes"
            )
        self._signer = _SigV4Signer(self.region or _region_of(self.base_url))
        return NoAuth()

    def sync_client(self) -> httpx.Client:
        client = super().sync_client()
        if self._signer is not None and self._signer.sign not in client.event_hooks["request"]:
            client.event_hooks["request"].append(self._signer.sign)
        return client

    def async_client(self) -> httpx.AsyncClient:
        client = super().async_client()
        if self._signer is not None and self._signer.asign not in client.event_hooks["request"]:
            client.event_hooks["request"].append(self._signer.asign)
        return client

    def __repr__(self) -> str:
        signing = " SigV4" if self._signer is not None else ""
        return f"<{type(self).__name__} {self.name} at {self.base_url} auth={self.auth!r}{signing}>"


def _region_of(url: httpx.URL) -> str:
    """``bedrock-runtime.us-west-2.amazonaws.com`` → ``us-west-2``."""
    parts = url.host.split(".")
    if len(parts) >= 3 and parts[0].startswith("bedrock"):
        return parts[1]
    raise ConfigurationError("bedrock: SigV4 signing needs the region; pass region= or set AWS_REGION")


class _SigV4Signer:
    """Signs each request with the AWS credential chain's current credentials (botocore)."""

    def __init__(self, region: str) -> None:
        try:
            self._auth = importlib.import_module("botocore.auth")
            self._aws_request = importlib.import_module("botocore.awsrequest")
            session = importlib.import_module("botocore.session").get_session()
        except ImportError:
            raise MissingDependencyError(
                "Bedrock without an API key (SigV4 signing with AWS credentials)", "aws", "botocore"
            ) from None
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "bedrock: no credentials; pass api_key= or set AWS_BEARER_TOKEN_BEDROCK (a Bedrock API key), "
                "or configure AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, a role)"
            )
        self._credentials = credentials
        self.region = region

    def sign(self, request: httpx.Request) -> None:
        # The Host header as it will be sent (with a port when not the default), which the service signs too.
        host = request.headers.get("host") or request.url.netloc.decode("ascii")
        unsigned = {"content-type": request.headers.get("content-type", "application/json"), "host": host}
        aws_request = self._aws_request.AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=unsigned
        )
        # Refreshable credentials (SSO, roles) renew themselves here when they near expiry.
        frozen = self._credentials.get_frozen_credentials()
        self._auth.SigV4Auth(frozen, SIGNING_NAME, self.region).add_auth(aws_request)
        for name in _SIGNED_HEADERS:
            value = aws_request.headers.get(name)
            if value is not None:
                request.headers[name] = value

    async def asign(self, request: httpx.Request) -> None:
        self.sign(request)

    def __repr__(self) -> str:
        return f"_SigV4Signer(region={self.region!r})"
