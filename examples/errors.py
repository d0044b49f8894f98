"""Errors: typed failures you can act on, instead of strings to parse.

Shows a configuration mistake caught before anything is sent (`ConfigurationError`, with a
"did you mean" hint), a model that does not exist (`NotFoundError`: not retryable, so fall back to
another model), the context every provider error carries (provider, model, status, request id,
`retryable`, `retry_after`), and one handler that decides by `retryable`. The hand-written loop
is for illustration: in an application, `mm.fallback(...)` does this with retries, a deadline and
circuit breakers.

    export OPENAI_API_KEY=sk-...
    python examples/errors.py
"""

from __future__ import annotations

import modelmix as mm


def answer(model_names: list[str], question: str) -> mm.ChatResponse:
    """Try each model in turn; move on only when the failure is specific to that model."""
    last_error: mm.ModelMixError | None = None
    for name in model_names:
        with mm.model(name) as model:
            try:
                return model.chat(question)
            except (mm.NotFoundError, mm.PermissionDeniedError) as exc:
                print(f"  {name}: {type(exc).__name__} (status {exc.status}, retryable={exc.retryable})")
                print(f"    {exc}")
                last_error = exc
            except mm.ProviderError as exc:
                if not exc.retryable:
                    raise  # a bad request or a refused key fails on every model alike
                wait = f"; the server asked to wait {exc.retry_after} s" if exc.retry_after else ""
                print(f"  {name}: temporary failure{wait}: {exc}")
                last_error = exc
    assert last_error is not None
    raise last_error


def main() -> None:
    # 1. A typo in the provider: raised at once, with a hint, before any network traffic.
    try:
        mm.model("opneai:gpt-4o-mini")
    except mm.ConfigurationError as exc:
        print("configuration error:", exc)

    # 2. A model that does not exist, then one that does.
    print("asking gpt-does-not-exist, then gpt-4o-mini:")
    response = answer(["openai:gpt-does-not-exist", "openai:gpt-4o-mini"], "Say hello in five words.")
    print(f"answer from {response.provider}:{response.model}: {response.text}")


if __name__ == "__main__":
    main()
