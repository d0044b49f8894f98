"""modelmix: one typed Model interface over OpenAI, Azure's catalog and local models.

>>> import modelmix as mm
>>> model = mm.model("openai:gpt-4o-mini")          # doctest: +SKIP
>>> model.chat("Say hi").text                        # doctest: +SKIP
"""

import importlib as _importlib
import typing as _typing
import warnings as _warnings

from ._auth import APIKeyAuth, Auth, NoAuth
from ._events import (
    ContentFilterEvent,
    FinishEvent,
    PartialOutput,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from ._exceptions import DEPRECATED_NAMES as _DEPRECATED_NAMES
from ._exceptions import (
    AllModelsFailedError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    ConflictError,
    ContextLengthExceededError,
    DeadlineExceededError,
    InBandStreamError,
    MissingDependencyError,
    ModelMixError,
    NotFoundError,
    PermissionDeniedError,
    PromptFilteredError,
    ProviderError,
    RateLimitError,
    ResponseFilteredError,
    ResponseTooLargeError,
    RetryBudgetExhaustedError,
    ServerError,
    StreamDecodeError,
    StreamError,
    StreamInterruptedError,
    StreamStalledError,
    StreamTruncatedError,
    TransportError,
    UnexpectedRedirectError,
    UnprocessableEntityError,
    UnsupportedCapabilityError,
)
from ._messages import (
    ContentPart,
    ImagePart,
    Message,
    MessagesInput,
    ReasoningState,
    TextPart,
    ToolCall,
    assistant,
    image,
    system,
    tool_result,
    user,
)
from ._model import Model
from ._registry import list_providers, model, register_provider
from ._response import Attempt, ChatResponse, Usage
from ._settings import Settings, Tool
from ._streaming import AsyncStream, Stream
from ._structured import OutputError, OutputRefusedError, OutputValidationError
from ._version import __version__
from .tokens import ModelInfo, model_info, register_model_info

# Names whose modules are only imported on first use, so `import modelmix` stays light (the
# resilience layer pulls in tenacity; the Azure provider its auth and profiles). Type checkers
# and documentation tools see them through the TYPE_CHECKING imports.
_LAZY: dict[str, str] = {
    "tool": "modelmix._tools",
    **dict.fromkeys(
        ("run_tools", "arun_tools", "ToolRun", "ToolStep", "ToolOutcome", "ToolLoopLimitError"), "modelmix._tool_loop"
    ),
    "ToolArgumentsError": "modelmix._tools",
    **dict.fromkeys(("count_tokens", "acount_tokens", "TokenCount"), "modelmix.tokens._counting"),
    "AvailableModel": "modelmix.providers._listing",
    "ContextWindowExceededError": "modelmix._preflight",
    "load_catalog": "modelmix.tokens._catalog",
    "BudgetExceededError": "modelmix.resilience._ledger",
    "ClientRateLimitError": "modelmix.resilience._limit_error",
    "alist_models": "modelmix.providers._listing",
    "list_models": "modelmix.providers._listing",
    "AzureModel": "modelmix.providers.azure",
    "AzureModelInfo": "modelmix.providers.azure",
    "AzureProfile": "modelmix.providers.azure",
    "ModelProfile": "modelmix._profile",
    "Provider": "modelmix.providers._provider",
    **dict.fromkeys(("instrument", "uninstrument"), "modelmix.observability._otel"),
    **dict.fromkeys(
        (
            "BreakerState",
            "BudgetModel",
            "CascadeModel",
            "CascadeResponse",
            "CircuitBreaker",
            "FallbackModel",
            "HedgedModel",
            "ResilientModel",
            "RetryPolicy",
            "budget",
            "cascade",
            "circuit_breaker",
            "fallback",
            "hedge",
            "rate_limit",
            "retrying",
            "shared_state",
        ),
        "modelmix.resilience",
    ),
}

if _typing.TYPE_CHECKING:
    # Type checkers see the subpackages and the deprecated error names as what they are; at run
    # time both come from __getattr__ below.
    from . import observability as observability
    from . import providers as providers
    from . import resilience as resilience
    from . import testing as testing
    from . import tokens as tokens
    from ._exceptions import ContentFilteredError as ContentFilteredError
    from ._exceptions import ContentFilterError as ContentFilterError
    from ._exceptions import StreamErrorEvent as StreamErrorEvent
    from ._preflight import ContextWindowExceededError
    from ._profile import ModelProfile
    from ._tool_loop import ToolLoopLimitError, ToolOutcome, ToolRun, ToolStep, arun_tools, run_tools
    from ._tools import ToolArgumentsError, tool
    from .observability._otel import instrument, uninstrument
    from .providers._listing import AvailableModel, alist_models, list_models
    from .providers._provider import Provider
    from .providers.azure import AzureModel, AzureModelInfo, AzureProfile
    from .resilience import (
        BreakerState,
        BudgetModel,
        CascadeModel,
        CascadeResponse,
        CircuitBreaker,
        FallbackModel,
        HedgedModel,
        ResilientModel,
        RetryPolicy,
        budget,
        cascade,
        circuit_breaker,
        fallback,
        hedge,
        rate_limit,
        retrying,
        shared_state,
    )
    from .resilience._ledger import BudgetExceededError
    from .resilience._limit_error import ClientRateLimitError
    from .tokens._catalog import load_catalog
    from .tokens._counting import TokenCount, acount_tokens, count_tokens


# The public subpackages, imported on first touch (`mm.resilience.Clock` works right after
# `import modelmix`) rather than eagerly, for the same reason as `_LAZY`.
_SUBPACKAGES = frozenset({"observability", "providers", "resilience", "testing", "tokens"})


def __getattr__(name: str) -> _typing.Any:
    if name in _SUBPACKAGES:
        # Importing a submodule binds it on this package, so this runs once per subpackage.
        return _importlib.import_module(f"{__name__}.{name}")
    replacement = _DEPRECATED_NAMES.get(name)
    if replacement is not None:
        # Not cached in globals(): every use of an old name should say so, until it is removed.
        _warnings.warn(
            f"modelmix.{name} is deprecated and will be removed in the next release; "
            f"use modelmix.{replacement} (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[replacement]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelmix' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


__all__ = [
    "APIKeyAuth",
    "APIStatusError",
    "AllModelsFailedError",
    "AsyncStream",
    "Attempt",
    "Auth",
    "AuthenticationError",
    "AvailableModel",
    "AzureModel",
    "AzureModelInfo",
    "AzureProfile",
    "BadRequestError",
    "BreakerState",
    "BudgetExceededError",
    "BudgetModel",
    "CascadeModel",
    "CascadeResponse",
    "ChatResponse",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientRateLimitError",
    "ConfigurationError",
    "ConflictError",
    "ContentFilterEvent",
    "ContentPart",
    "ContextLengthExceededError",
    "ContextWindowExceededError",
    "DeadlineExceededError",
    "FallbackModel",
    "FinishEvent",
    "HedgedModel",
    "ImagePart",
    "InBandStreamError",
    "Message",
    "MessagesInput",
    "MissingDependencyError",
    "Model",
    "ModelInfo",
    "ModelMixError",
    "ModelProfile",
    "NoAuth",
    "NotFoundError",
    "OutputError",
    "OutputRefusedError",
    "OutputValidationError",
    "PartialOutput",
    "PermissionDeniedError",
    "PromptFilteredError",
    "Provider",
    "ProviderError",
    "RateLimitError",
    "ReasoningDelta",
    "ReasoningState",
    "RefusalDelta",
    "ResilientModel",
    "ResponseFilteredError",
    "ResponseTooLargeError",
    "RetryBudgetExhaustedError",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "Stream",
    "StreamDecodeError",
    "StreamError",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamStalledError",
    "StreamTruncatedError",
    "TextDelta",
    "TextPart",
    "TokenCount",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallDelta",
    "ToolLoopLimitError",
    "ToolOutcome",
    "ToolRun",
    "ToolStep",
    "TransportError",
    "UnexpectedRedirectError",
    "UnprocessableEntityError",
    "UnsupportedCapabilityError",
    "Usage",
    "UsageEvent",
    "__version__",
    "acount_tokens",
    "alist_models",
    "arun_tools",
    "assistant",
    "budget",
    "cascade",
    "circuit_breaker",
    "count_tokens",
    "fallback",
    "hedge",
    "image",
    "instrument",
    "list_models",
    "list_providers",
    "load_catalog",
    "model",
    "model_info",
    "rate_limit",
    "register_model_info",
    "register_provider",
    "retrying",
    "run_tools",
    "shared_state",
    "system",
    "tool",
    "tool_result",
    "uninstrument",
    "user",
]
