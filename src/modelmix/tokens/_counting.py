"""`count_tokens`: what a request will consume, counted before it is sent.

The method depends on the model, first match wins:

1. ``tokenizer=`` (yours: ``str -> int`` or ``str -> list[int]``) counts every text;
2. an in-process model (``local:``) renders the chat with its own template and tokenizer (exact);
3. OpenAI models (by name, or an Azure deployment's profile) use tiktoken with the encoding of
   their family and OpenAI's chat-format recipe (exact);
4. a ``llamacpp:`` model *object* asks its server's tokenizer (text exact, framing estimated);
5. anything else gets the calibrated offline estimate (``exact=False``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, cast

from typing_extensions import TypedDict, Unpack

from .._exceptions import ConfigurationError
from .._messages import Message, MessagesInput, to_messages
from .._model import Model
from ._chat_format import chat_prompt_tokens
from ._estimate import estimate_family, estimate_prompt_tokens, framing_tokens, prompt_text_pieces
from ._model_tokenizers import (
    TokenizerUnavailable,
    alocal_prompt_tokens,
    aserver_text_tokens,
    local_prompt_tokens,
    server_text_tokens,
)
from ._tiktoken_files import ENCODINGS
from ._tiktoken_files import aencoding as aload_encoding
from ._tiktoken_files import encoding as load_encoding

if TYPE_CHECKING:
    import tiktoken

    from .._http import HTTPModel
    from ..providers.local import LocalModel

__all__ = ["CountOptions", "Method", "TokenCount", "Tokenizer", "acount_tokens", "count_tokens", "openai_encoding"]

Method = Literal["tiktoken", "local-model", "server-tokenizer", "tokenizer", "estimate"]
Tokenizer = Callable[[str], Union[int, Sequence[int]]]
"""A tokenizer you supply: text → its number of tokens, or the tokens themselves."""

DEFAULT_SERVER_TIMEOUT = 2.0


class CountOptions(TypedDict, total=False):
    """What `count_tokens` takes besides the messages and the model."""

    tools: Sequence[Any] | None
    """The tools the request offers, in any form ``chat`` takes."""
    response_format: Any
    """The request's ``response_format`` (a JSON schema counts; ``"json"`` costs nothing)."""
    tokenizer: Tokenizer | None
    """Your tokenizer: ``str -> int`` or ``str -> list[int]``."""
    encoding: str | None
    """Force a shipped tiktoken encoding (``"o200k_base"`` or ``"cl100k_base"``) and OpenAI framing."""
    use_server: bool
    """Let a ``llamacpp:`` model object ask its server's tokenizer (default True)."""
    timeout: float
    """Seconds the server's tokenizer may take (default 2)."""


@dataclass(frozen=True)
class TokenCount:
    """How many prompt tokens a request will consume, and how sure that number is.

    ``exact`` is True when the model's own tokenizer counted the text and its chat framing is
    known (tiktoken for OpenAI models, the in-process model's template); ``method`` says how the
    number was made, ``encoding`` names the tiktoken encoding used (else None), and ``note`` says
    why a count is not exact.
    """

    tokens: int
    exact: bool
    method: Method
    encoding: str | None = None
    note: str = ""

    def __int__(self) -> int:
        return self.tokens


_O200K = re.compile(r"^(chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|codex-mini|computer-use)")
_CL100K = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)")
_SNAPSHOT_PREFIXES = re.compile(r"^(ft:|openai/)")
# Backends that serve open models: a name there never means an OpenAI model.
_OPEN_MODEL_PROVIDERS = frozenset({"local", "llamacpp", "ollama", "vllm", "lmstudio"})
_OPENAI_FAMILIES = frozenset({"gpt-5", "o-series"})


def openai_encoding(name: str) -> str | None:
    """The tiktoken encoding of OpenAI model `name` (``gpt-4o-mini``, ``gpt-35-turbo``,
    ``ft:gpt-4o-mini:org::id``...), or None when the name is not an OpenAI model's."""
    lowered = _SNAPSHOT_PREFIXES.sub("", name.strip().lower())
    if _O200K.match(lowered):
        return "o200k_base"
    if _CL100K.match(lowered):
        return "cl100k_base"
    return None


@dataclass(frozen=True)
class _Plan:
    method: Method
    encoding: str | None = None
    assumed: str = ""
    """Why the encoding is a guess (an Azure deployment named after nothing), else empty."""
    factor: float = 1.0
    note: str = ""
    instance: Model | None = None
    """The model object under every wrapper, when a Model was given."""


def _name_and_provider(model: str | Model) -> tuple[str, str | None, Model | None]:
    if isinstance(model, Model):
        inner = model.unwrap()
        members = getattr(inner, "models", None)
        if isinstance(members, list) and all(isinstance(m, Model) for m in members):
            # A chain's members may tokenize differently: one number would be wrong for some.
            raise ConfigurationError(
                f"count_tokens counts for one model, and {inner.name!r} is a chain of {len(members)}: "
                "count with each of its members (chain.models)"
            )
        return inner.name, inner.provider, inner
    if isinstance(model, str) and model.strip():
        from .._registry import list_providers

        prefix, sep, rest = model.strip().partition(":")
        if sep and prefix.lower() in list_providers():
            return rest, prefix.lower(), None
        return model.strip(), None, None
    raise ConfigurationError(
        f"model= must be a model name ('gpt-4o', 'openai:gpt-4o-mini', 'ollama:llama3.1') or a Model object, "
        f"not {type(model).__name__} {model!r}"[:300]
    )


def _plan(model: str | Model, tokenizer: Tokenizer | None, encoding_name: str | None, use_server: bool) -> _Plan:
    name, provider, instance = _name_and_provider(model)
    if encoding_name is not None:
        if encoding_name not in ENCODINGS:
            raise ConfigurationError(f"encoding={encoding_name!r} is not shipped; use one of {', '.join(ENCODINGS)}")
        return _Plan("tokenizer" if tokenizer else "tiktoken", encoding=encoding_name)
    found = openai_encoding(name) if provider not in _OPEN_MODEL_PROVIDERS else None
    assumed = ""
    if found is None and instance is not None and provider == "azure":
        family = instance.profile.family
        if family in _OPENAI_FAMILIES:
            found = "o200k_base"
        elif family == "gpt":
            found = "o200k_base"
            assumed = (
                f"the deployment name {name!r} does not say which GPT model it runs; counted as a gpt-4o-class "
                "model (o200k_base): pass encoding='cl100k_base' for gpt-4 or gpt-35-turbo"
            )
    if tokenizer is not None:
        return _Plan("tokenizer", encoding=found, assumed=assumed)
    if _is_local(instance):
        return _Plan("local-model", instance=instance)
    if found is not None:
        return _Plan("tiktoken", encoding=found, assumed=assumed)
    family, factor = estimate_family(name)
    if use_server and instance is not None and provider == "llamacpp":
        return _Plan("server-tokenizer", factor=factor, instance=instance)
    if family == "unknown":
        note = f"no tokenizer for {name!r} and no known family: the uncalibrated offline estimate"
    else:
        note = f"no tokenizer for {name!r}: offline estimate calibrated for {family} models"
    return _Plan("estimate", factor=factor, note=note)


def _is_local(instance: Model | None) -> bool:
    if instance is None or instance.provider != "local":
        return False
    from ..providers.local import LocalModel

    return isinstance(instance, LocalModel)


def _prepare(
    messages: MessagesInput, tools: Sequence[Any] | None, response_format: Any
) -> tuple[list[Message], list[dict[str, Any]], Mapping[str, Any] | None]:
    from ..providers._openai_wire import encode_response_format, encode_tool

    parsed = to_messages(messages)
    if tools is not None and (isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence)):
        raise ConfigurationError(
            "tools= must be a list of tools (functions, pydantic models, mm.tool(...) or OpenAI tool dicts), "
            f"not {type(tools).__name__}"
        )
    encoded = [encode_tool(tool) for tool in tools or ()]
    fmt = encode_response_format(response_format) if response_format is not None else None
    return parsed, encoded, fmt if isinstance(fmt, Mapping) else None


def _user_counter(tokenizer: Tokenizer) -> Callable[[str], int]:
    if not callable(tokenizer):
        raise ConfigurationError(
            f"tokenizer= must be a callable taking a string and returning a count or a list of tokens, "
            f"not {type(tokenizer).__name__}"
        )

    def count(text: str) -> int:
        if not text:
            return 0
        result = tokenizer(text)
        if isinstance(result, (bool, str, bytes)) or not isinstance(result, (int, Sequence)):
            raise ConfigurationError(
                f"tokenizer= returned {type(result).__name__}; it must return an int or a list of tokens"
            )
        return result if isinstance(result, int) else len(result)

    return count


def _tiktoken_counter(encoder: tiktoken.Encoding) -> Callable[[str], int]:
    def count(text: str) -> int:
        # Special-token text in a message is plain text to the API, so it is counted as text.
        return len(encoder.encode(text, disallowed_special=())) if text else 0

    return count


def _with_framing(
    plan: _Plan, messages: list[Message], tools: list[dict[str, Any]], fmt: Any, counter: Callable[[str], int]
) -> TokenCount:
    """Count texts with `counter`, framed as OpenAI frames them when the family is OpenAI's and
    with the estimated framing otherwise."""
    if plan.encoding is not None:
        tokens, known = chat_prompt_tokens(messages, counter, tools=tools, response_format=fmt)
        note = plan.assumed or ("" if known else "an image's size is unknown: counted as 1024x1024")
        return TokenCount(tokens, exact=not note, method=plan.method, encoding=plan.encoding, note=note)
    tokens = framing_tokens(messages) + sum(counter(piece) for piece in prompt_text_pieces(messages, tools))
    return TokenCount(tokens, exact=False, method=plan.method, note="the chat template's framing is estimated")


@dataclass(frozen=True)
class _Request:
    messages: list[Message]
    tools: list[dict[str, Any]]
    response_format: Mapping[str, Any] | None

    @property
    def server_text(self) -> str:
        """Every text of the request, for a tokenizer asked once."""
        return "\n".join(prompt_text_pieces(self.messages, self.tools))


def _start(model: str | Model, messages: MessagesInput, options: CountOptions) -> tuple[_Plan, _Request]:
    unknown = set(options) - set(CountOptions.__annotations__)
    if unknown:
        raise ConfigurationError(
            f"count_tokens() got unknown option(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(CountOptions.__annotations__)}"
        )
    plan = _plan(model, options.get("tokenizer"), options.get("encoding"), options.get("use_server", True))
    return plan, _Request(*_prepare(messages, options.get("tools"), options.get("response_format")))


def _finish(
    plan: _Plan,
    request: _Request,
    *,
    tokenizer: Tokenizer | None = None,
    encoder: tiktoken.Encoding | None = None,
    counted: int | None = None,
    failure: str = "",
) -> TokenCount:
    """The count, from what the plan's method measured (sans-I/O: the sync and async entry
    points differ only in how they load and ask)."""
    if tokenizer is not None:
        return _framed(plan, request, _user_counter(tokenizer))
    if encoder is not None:
        return _framed(plan, request, _tiktoken_counter(encoder))
    if plan.method == "local-model" and counted is not None:
        return TokenCount(counted, exact=True, method="local-model")
    if plan.method == "server-tokenizer" and counted is not None:
        note = "text counted by the server's tokenizer; the chat template's framing is estimated"
        return TokenCount(counted + framing_tokens(request.messages), exact=False, method=plan.method, note=note)
    tokens = estimate_prompt_tokens(request.messages, request.tools, plan.factor)
    return TokenCount(tokens, exact=False, method="estimate", note=failure or plan.note)


def _framed(plan: _Plan, request: _Request, counter: Callable[[str], int]) -> TokenCount:
    """Texts counted by `counter`, framed as OpenAI frames them when the family is OpenAI's and
    with the estimated framing otherwise."""
    if plan.encoding is not None:
        tokens, known = chat_prompt_tokens(
            request.messages, counter, tools=request.tools, response_format=request.response_format
        )
        note = plan.assumed or ("" if known else "an image's size is unknown: counted as a 1024x1024 image")
        return TokenCount(tokens, exact=not note, method=plan.method, encoding=plan.encoding, note=note)
    texts = prompt_text_pieces(request.messages, request.tools)
    tokens = framing_tokens(request.messages) + sum(counter(text) for text in texts)
    return TokenCount(tokens, exact=False, method=plan.method, note="the chat template's framing is estimated")


_LOCAL_UNRENDERED = "the in-process model's chat template could not render this request: estimate"


def count_tokens(
    messages: MessagesInput,
    *,
    model: str | Model,
    **options: Unpack[CountOptions],
) -> TokenCount:
    """Prompt tokens `messages` (with `tools` and `response_format`) will consume on `model`.

    `messages` takes what `Model.chat` takes; `model` is a name (``"gpt-4o"``,
    ``"azure:my-deployment"``) or a `Model`. Options (`CountOptions`): ``tools``,
    ``response_format``; ``encoding`` forces one of the shipped tiktoken encodings;
    ``tokenizer`` supplies your own (``str -> int`` or ``str -> list[int]``);
    ``use_server=False`` keeps a ``llamacpp:`` model object from asking its server, and
    ``timeout`` bounds that request, in seconds. Nothing is downloaded: an encoding is loaded from
    the package on first use. Bad input raises `ConfigurationError`.
    """
    plan, request = _start(model, messages, options)
    tokenizer, timeout = options.get("tokenizer"), options.get("timeout", DEFAULT_SERVER_TIMEOUT)
    if plan.method == "tokenizer":
        return _finish(plan, request, tokenizer=tokenizer)
    if plan.method == "tiktoken" and plan.encoding is not None:
        return _finish(plan, request, encoder=load_encoding(plan.encoding))
    if plan.method == "local-model":
        counted = local_prompt_tokens(cast("LocalModel", plan.instance), request.messages, request.tools)
        return _finish(plan, request, counted=counted, failure=_LOCAL_UNRENDERED)
    if plan.method == "server-tokenizer":
        try:
            counted = server_text_tokens(cast("HTTPModel", plan.instance), request.server_text, timeout=timeout)
        except TokenizerUnavailable as exc:
            return _finish(plan, request, failure=f"the server's tokenizer was not available ({exc}): estimate")
        return _finish(plan, request, counted=counted)
    return _finish(plan, request)


async def acount_tokens(
    messages: MessagesInput,
    *,
    model: str | Model,
    **options: Unpack[CountOptions],
) -> TokenCount:
    """Async `count_tokens`: an encoding's or a local model's first load runs in a worker thread
    and a server's tokenizer is asked asynchronously, so the event loop never waits on them."""
    plan, request = _start(model, messages, options)
    tokenizer, timeout = options.get("tokenizer"), options.get("timeout", DEFAULT_SERVER_TIMEOUT)
    if plan.method == "tokenizer":
        return _finish(plan, request, tokenizer=tokenizer)
    if plan.method == "tiktoken" and plan.encoding is not None:
        return _finish(plan, request, encoder=await aload_encoding(plan.encoding))
    if plan.method == "local-model":
        counted = await alocal_prompt_tokens(cast("LocalModel", plan.instance), request.messages, request.tools)
        return _finish(plan, request, counted=counted, failure=_LOCAL_UNRENDERED)
    if plan.method == "server-tokenizer":
        try:
            text = request.server_text
            counted = await aserver_text_tokens(cast("HTTPModel", plan.instance), text, seconds=timeout)
        except TokenizerUnavailable as exc:
            return _finish(plan, request, failure=f"the server's tokenizer was not available ({exc}): estimate")
        return _finish(plan, request, counted=counted)
    return _finish(plan, request)
