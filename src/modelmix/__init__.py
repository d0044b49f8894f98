"""modelmix: one typed Model interface over OpenAI, Azure's catalog and local models.

>>> import modelmix as mm
>>> model = mm.model("openai:gpt-4o-mini")          # doctest: +SKIP
>>> model.chat("Say hi").text                        # doctest: +SKIP
"""

import importlib as _importlib
import typing as _typing

from ._auth import APIKeyAuth, Auth, NoAuth
from ._exceptions import (
    AllModelsFailedError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    ConflictError,
    ContentFilteredError,
    ContentFilterError,
    ContextLengthExceededError,
    DeadlineExceededError,
    MissingDependencyError,
    ModelMixError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ResponseTooLargeError,
    RetryBudgetExhaustedError,
    ServerError,
    StreamDecodeError,
    StreamError,
    StreamErrorEvent,
    StreamInterruptedError,
    StreamStalledError,
    StreamTruncatedError,
    TransportError,
    UnexpectedRedirectError,
    UnprocessableEntityError,
)
from ._messages import (
    ContentPart,
    ImagePart,
    Message,
    MessagesInput,
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
from ._response import (
    Attempt,
    ChatResponse,
    ContentFilterEvent,
    FinishEvent,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from ._settings import Settings, Tool
from ._streaming import AsyncStream, Stream
from ._version import __version__
from .tokens import ModelInfo, model_info, register_model_info

# Names whose modules are only imported on first use, so `import modelmix` stays light (the
# resilience layer pulls in tenacity; the Azure provider its auth and profiles). Type checkers
# and documentation tools see them through the TYPE_CHECKING imports.
_LAZY: dict[str, str] = {
    "AvailableModel": "modelmix.providers._listing",
    "alist_models": "modelmix.providers._listing",
    "list_models": "modelmix.providers._listing",
    "AzureModel": "modelmix.providers.azure",
    "AzureModelInfo": "modelmix.providers.azure",
    "AzureProfile": "modelmix.providers.azure",
    **dict.fromkeys(
        (
            "BreakerState",
            "CircuitBreaker",
            "FallbackModel",
            "HedgedModel",
            "ResilientModel",
            "RetryPolicy",
            "circuit_breaker",
            "fallback",
            "hedge",
            "retrying",
        ),
        "modelmix.resilience",
    ),
}

if _typing.TYPE_CHECKING:
    from .providers._listing import AvailableModel, alist_models, list_models
    from .providers.azure import AzureModel, AzureModelInfo, AzureProfile
    from .resilience import (
        BreakerState,
        CircuitBreaker,
        FallbackModel,
        HedgedModel,
        ResilientModel,
        RetryPolicy,
        circuit_breaker,
        fallback,
        hedge,
        retrying,
    )


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelmix' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "ChatResponse",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigurationError",
    "ConflictError",
    "ContentFilterError",
    "ContentFilterEvent",
    "ContentFilteredError",
    "ContentPart",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "FallbackModel",
    "FinishEvent",
    "HedgedModel",
    "ImagePart",
    "Message",
    "MessagesInput",
    "MissingDependencyError",
    "Model",
    "ModelInfo",
    "ModelMixError",
    "NoAuth",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "ReasoningDelta",
    "ResilientModel",
    "ResponseTooLargeError",
    "RetryBudgetExhaustedError",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "Stream",
    "StreamDecodeError",
    "StreamError",
    "StreamErrorEvent",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamStalledError",
    "StreamTruncatedError",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "TransportError",
    "UnexpectedRedirectError",
    "UnprocessableEntityError",
    "Usage",
    "UsageEvent",
    "__version__",
    "alist_models",
    "assistant",
    "circuit_breaker",
    "fallback",
    "hedge",
    "image",
    "list_models",
    "list_providers",
    "model",
    "model_info",
    "register_model_info",
    "register_provider",
    "retrying",
    "system",
    "tool_result",
    "user",
]
