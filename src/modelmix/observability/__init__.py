"""Observability: hooks that see every call and attempt, OpenTelemetry traces and metrics, logs.

- `Hooks`: subclass it and `add_hooks` it to be told when a call starts, each request is sent,
  a stream's first content arrives, a retry is waited for, each attempt and the call end
  (`CallInfo`, `AttemptInfo`, `RetryWait`).
- `instrument()`: OpenTelemetry spans and metrics following the GenAI semantic conventions,
  through your tracer and meter providers (``pip install modelmix[otel]``).
- `log_calls()`: one structured log line per attempt and per call.

Nothing here runs, and nothing OpenTelemetry is imported, until you switch it on.
"""

import importlib as _importlib
import typing as _typing

from .._observe import AttemptInfo, CallInfo, Hooks, RetryWait, add_hooks, remove_hooks

if _typing.TYPE_CHECKING:
    from ._logs import CallLogger, log_calls
    from ._otel import SEMCONV_VERSION, Instrumentation, instrument, uninstrument

__all__ = [
    "SEMCONV_VERSION",
    "AttemptInfo",
    "CallInfo",
    "CallLogger",
    "Hooks",
    "Instrumentation",
    "RetryWait",
    "add_hooks",
    "instrument",
    "log_calls",
    "remove_hooks",
    "uninstrument",
]

_LAZY = {
    "SEMCONV_VERSION": "._otel",
    "Instrumentation": "._otel",
    "instrument": "._otel",
    "uninstrument": "._otel",
    "CallLogger": "._logs",
    "log_calls": "._logs",
}


def __getattr__(name: str) -> _typing.Any:
    # Loaded on first use: `import modelmix.observability` stays as light as the hooks.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_importlib.import_module(module, __name__), name)
