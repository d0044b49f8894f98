"""A fallback chain on Azure: an open catalog model first, an Azure OpenAI deployment behind it.

The catalog model (Phi-4-mini-instruct on a Foundry ``/models`` endpoint, API key) answers most
calls cheaply; when it is unavailable the chain moves on to a gpt-4o-mini deployment on the Azure
OpenAI v1 route, signed in with Entra ID. Each answer says which model produced it and what was
tried before.

So that it runs anywhere, offline, the two Azure endpoints are local stand-ins
(`modelmix.testing.FakeOpenAIServer` on 127.0.0.1) and the catalog one is scripted to be
overloaded (HTTP 503) on the first call. To run it for real, replace the two endpoints with yours
(``https://<resource>.services.ai.azure.com/models`` and ``https://<resource>.openai.azure.com``),
the catalog key with yours, and the token provider with
``credential=DefaultAzureCredential()`` (``pip install 'modelmix[azure]'``).

    python examples/azure_chain.py
"""

from __future__ import annotations

import time

import modelmix as mm
from modelmix.testing import FakeOpenAIServer, FakeReply

CATALOG_KEY = "catalog-demo-key"
DEMO_TOKEN = "demo-entra-token"


def demo_token_provider() -> tuple[str, float]:
    """Stands in for azure-identity: a bearer token and when it expires (epoch seconds)."""
    return DEMO_TOKEN, time.time() + 3600


def build_chain(catalog_endpoint: str, openai_endpoint: str) -> mm.Model:
    catalog = mm.AzureModel(
        "Phi-4-mini-instruct",
        endpoint=catalog_endpoint,  # a …/models endpoint: the Model Inference API route
        api_key=CATALOG_KEY,
    )
    gpt = mm.AzureModel(
        "gpt-4o-mini",
        endpoint=openai_endpoint,  # a resource endpoint: the Azure OpenAI v1 route
        token_provider=demo_token_provider,  # production: credential=DefaultAzureCredential()
    )
    print(f"catalog: {catalog.route.name} route, profile {catalog.profile.family!r} -> {catalog.route.chat_url}")
    print(f"openai:  {gpt.route.name} route, profile {gpt.profile.family!r} -> {gpt.route.chat_url}")
    return mm.fallback(catalog, gpt, deadline=30.0)


def ask(chain: mm.Model, question: str) -> None:
    # The same messages go to every model; each one's profile adapts them (a family without a
    # system role, such as DeepSeek-R1, would get the instruction folded into the user turn).
    reply = chain.chat([mm.system("Answer in one short sentence."), mm.user(question)])
    tried = ", ".join(f"{a.provider}:{a.model} ({a.error or 'ok'})" for a in reply.attempts)
    print(f"\nQ: {question}\nA: {reply.text}\n   answered by {reply.model}; attempts: {tried}")


def main() -> None:
    overloaded_then_fine: list[str | FakeReply] = [
        FakeReply(text="The model is temporarily overloaded.", status=503),
        FakeReply(text="Kyoto was Japan's capital for over a thousand years."),
    ]
    with (
        FakeOpenAIServer(overloaded_then_fine, api_key=CATALOG_KEY, model="Phi-4-mini-instruct") as catalog_server,
        FakeOpenAIServer(
            "Paris has been France's capital since the 10th century.", api_key=DEMO_TOKEN, model="gpt-4o-mini"
        ) as openai_server,
    ):
        with build_chain(f"{catalog_server.url}/models", openai_server.url) as chain:
            ask(chain, "What is the capital of France?")  # catalog overloaded -> Azure OpenAI answers
            ask(chain, "Which city was Japan's capital before Tokyo?")  # the catalog model answers
        print(f"\nrequests: catalog {len(catalog_server.requests)}, azure openai {len(openai_server.requests)}")


if __name__ == "__main__":
    main()
