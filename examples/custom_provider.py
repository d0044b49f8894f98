"""Writing a provider: add a backend in a few lines, then use it like a built-in one.

"Acme" stands for any server that speaks OpenAI's chat completions; the fake server from
`modelmix.testing` plays it here. The provider says where the server is, which environment
variables configure it and what its models enforce. Retries, fallback chains, hedging,
`mm.list_models()` and the `modelmix models` command then work with it unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import modelmix as mm
from modelmix.cli import main as modelmix_cli
from modelmix.providers import Provider
from modelmix.testing import FakeOpenAIServer, FakeReply


class AcmeProvider(Provider):
    """Acme's inference server, configured by ACME_BASE_URL and ACME_API_KEY."""

    name = "acme"  # the registry prefix: mm.model("acme:<model>")
    label = "Acme inference"
    default_base_url = "http://127.0.0.1:9000/v1"
    base_url_env = "ACME_BASE_URL"
    api_key_env = "ACME_API_KEY"
    # What every Acme model enforces: streams carry no usage, so modelmix counts it offline.
    profile_defaults: ClassVar[Mapping[str, Any]] = {"stream_usage": False, "estimate_usage": True}
    # Model families by name: the "mini" models cannot call tools.
    families = ((r"-mini$", {"family": "acme-mini", "tools": False}),)


def acme_server(request: dict[str, Any]) -> FakeReply:
    if request["model"] == "acme-retired":
        return FakeReply(text="The model `acme-retired` does not exist.", status=404)
    return FakeReply(text=f"Hello from {request['model']}!")


def main() -> None:
    with FakeOpenAIServer(reply=acme_server, model="acme-large") as server:
        os.environ["ACME_BASE_URL"] = server.base_url
        mm.register_provider("acme", AcmeProvider, replace=True)

        large = mm.model("acme:acme-large")  # with mm.retrying's defaults, like any mm.model()
        print("chat:", large.chat("Say hello").text)

        steady = mm.retrying(mm.model("acme:acme-large", max_retries=0), max_retries=4)
        chain = mm.fallback(mm.model("acme:acme-retired", max_retries=0), steady)
        print("fallback:", chain.chat("Say hello").text)

        hedged = mm.hedge(mm.model("acme:acme-large"), mm.model("acme:acme-mini"), after=2.0)
        with hedged.stream("Say hello") as stream:
            text = "".join(stream.text_deltas())
        usage = stream.response.usage
        print("hedge:", text, "| usage estimated:", usage is not None and usage.estimated)

        mini = mm.model("acme:acme-mini", max_retries=0)
        print("profile:", mini.profile.family, "| tools:", mini.profile.tools)

        print("listed:", [m.spec for m in mm.list_models("acme")])
        modelmix_cli(["models"])  # the Acme server shows up next to the built-in backends

        for model in (large, steady, chain, hedged, mini):
            model.close()


if __name__ == "__main__":
    main()
