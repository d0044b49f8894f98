"""In-process models on llama-cpp-python (``local:``), and the embedded default.

``mm.model("local")`` (and ``mm.model()`` when ``MODELMIX_MODEL`` is unset) is SmolLM2-135M-Instruct,
shipped with the ``modelmix[local]`` extra: no server, no key, no network. ``local:/path/x.gguf``
(or ``MODELMIX_LOCAL_MODEL=/path/x.gguf`` with plain ``local``) runs another GGUF file.

Answers are produced in llama.cpp's OpenAI-shaped chunks and decoded by the same OpenAI stream
parser and `Stream` machinery the HTTP models use, so responses, stream events, the commit point
and errors look exactly like any other backend's. Blocking work runs in the caller's thread
(sync) or a worker thread (async); an async caller that is cancelled stops generation at the
next token. Callers share one loaded copy of a model and take turns (a lock) to generate.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from typing_extensions import Unpack

from .._call_deadline import attempt_end
from .._codec import Reply
from .._events import StreamEvent, UsageEvent
from .._exceptions import (
    ConfigurationError,
    ContextLengthExceededError,
    MissingDependencyError,
    ModelMixError,
    ProviderError,
)
from .._messages import Message, MessagesInput, to_messages
from .._model import Model
from .._preflight import acheck_context, check_context
from .._response import ChatResponse, Usage
from .._settings import Settings, merge_settings
from .._streaming import AsyncStream, OpenedStream, Stream
from .._structured import output_achat, output_chat, output_stream
from ..tokens._catalog import pricing_for
from ._listing import AvailableModel
from ._llama_runtime import (
    EMBEDDED_LABEL,
    EMBEDDED_NAME,
    LOCAL_MODEL_ENV,
    LlamaRuntime,
    embedded_gguf,
    load_runtime,
    resolve_gguf,
)
from ._local_request import check_extra, encode_message, encode_response_format, encode_tool_choice
from ._local_sampling import DEFAULT_MAX_TOKENS, Interrupt, acquire_async, sampling_defaults
from ._openai_wire import OpenAIChatCodec, OpenAIStreamParser, encode_tool
from ._provider import Provider

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_N_CTX",
    "LocalModel",
    "LocalProvider",
    "alist_models",
    "create",
    "list_models",
]

DEFAULT_N_CTX = 2048
"""Context window used unless ``n_ctx=`` says otherwise (SmolLM2 supports 8192; 2048 keeps
the KV cache small)."""

MIN_N_CTX = 256
_SETTINGS_PASSED = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "max_tokens")
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


_Fit = tuple[list[Message], Settings, int]
"""The conversation, the merged settings and the input's size in bytes, for the context check."""


class _Abandoned(Exception):
    """The async caller went away before the model was free; nothing to do."""


def _require_llama_cpp() -> None:
    # find_spec is cheap: the heavy library is imported only when the model is first used.
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError("local models", "local", "llama-cpp-python")


class LocalModel(Model):
    """A GGUF model run in this process by llama.cpp.

    ``LocalModel()`` is the embedded SmolLM2-135M-Instruct; ``LocalModel("/models/x.gguf")`` any
    other file. `n_ctx` sets the context window, `n_threads` the CPU threads (llama.cpp's default:
    half the cores). `n_ubatch` is llama.cpp's micro-batch size (default: 1 on CPUs with Intel AMX,
    whose batched path crashes on some hosts, see `modelmix.providers._llama_runtime`; else
    llama.cpp's default).
    """

    provider = "local"

    def __init__(
        self,
        name: str = "",
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        settings: Settings | None = None,
        n_ubatch: int | None = None,
    ) -> None:
        _require_llama_cpp()
        path, embedded = resolve_gguf(name)
        self.path: Path = path
        self.embedded = embedded
        self.name = EMBEDDED_NAME if embedded else (name.strip() or str(path))
        self.label = EMBEDDED_LABEL if embedded else path.name
        self.settings = merge_settings(None, settings or {})
        if n_ctx < MIN_N_CTX:
            # llama.cpp rounds smaller contexts up to 256, which llama-cpp-python's buffers don't follow.
            raise ConfigurationError(f"n_ctx={n_ctx} is too small: use at least {MIN_N_CTX} (default {DEFAULT_N_CTX})")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_ubatch = n_ubatch
        self._runtime: LlamaRuntime | None = None
        # Answers cost 0 (the model runs here) unless a price is registered under any name this
        # model answers to: the one it was asked for by ("smollm2"), its canonical name, its file.
        self.pricing = pricing_for(self.provider, [name.strip(), self.name, path.stem])
        self._codec = OpenAIChatCodec()

    # ----------------------------------------------------------------------------- loading

    @property
    def context_window(self) -> int | None:
        return self.n_ctx

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory (loading happens on first use, or via `load`)."""
        return self._runtime is not None

    def load(self) -> LlamaRuntime:
        """Load the weights now (normally done lazily by the first call). Idempotent and shared:
        models on the same file and context size reuse one loaded copy."""
        if self._runtime is None:
            self._runtime = load_runtime(
                self.path, n_ctx=self.n_ctx, n_threads=self.n_threads, n_ubatch=self.n_ubatch, label=self.label
            )
        return self._runtime

    async def aload(self) -> LlamaRuntime:
        """Async `load` (the blocking load runs in a worker thread)."""
        if self._runtime is not None:
            return self._runtime
        return await anyio.to_thread.run_sync(self.load)

    # ----------------------------------------------------------------------------- calls

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """The common checks, then the in-process model's own: ``extra_body`` keys must be options
        llama.cpp's ``create_chat_completion`` takes."""
        super().check_settings(settings)
        extra = settings.get("extra_body")
        if extra:
            check_extra(extra)

    @output_chat
    def chat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        encoded, options, fit = self._request(messages, settings)
        # A deadline set by a retrying model or a chain stops the model: mid-prompt or at the next token.
        return self._generate(encoded, options, Interrupt(None, attempt_end()), fit)

    @output_achat
    async def achat(self, messages: MessagesInput, **settings: Unpack[Settings]) -> ChatResponse:
        encoded, options, fit = self._request(messages, settings)
        cancelled = threading.Event()
        # Read here, not in the worker thread: the deadline lives in this task's context.
        interrupt = Interrupt(cancelled, attempt_end())
        try:
            # Abandoned on cancellation: the worker notices `cancelled` before its next token and ends.
            return await anyio.to_thread.run_sync(
                partial(self._generate, encoded, options, interrupt, fit), abandon_on_cancel=True
            )
        finally:
            cancelled.set()

    @output_stream
    def stream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> Stream:
        encoded, options, fit = self._request(messages, settings)

        def open_stream() -> OpenedStream:
            check_context(self, *fit)
            runtime = self.load()
            started = time.perf_counter()
            interrupt = Interrupt(None, attempt_end())
            if not interrupt.acquire(runtime.lock):
                raise interrupt.timeout_error(waiting=True, provider=self.provider, model=self.name)
            source = _Chunks(self, runtime, encoded, options, interrupt)
            return OpenedStream(
                chunks=source, close=source.close, request_id=None, host=None, started=started, decoded=True
            )

        return Stream(open_stream, _LocalStreamParser(), provider=self.provider, model=self.name, pricing=self.pricing)

    @output_stream
    def astream(self, messages: MessagesInput, **settings: Unpack[Settings]) -> AsyncStream:
        encoded, options, fit = self._request(messages, settings)

        async def open_stream() -> OpenedStream:
            await acheck_context(self, *fit)
            runtime = await self.aload()
            started = time.perf_counter()
            await acquire_async(runtime.lock)
            source = _Chunks(self, runtime, encoded, options, Interrupt(None, attempt_end()))
            return OpenedStream(
                chunks=_AsyncChunks(source),
                close=source.aclose,
                request_id=None,
                host=None,
                started=started,
                decoded=True,
            )

        return AsyncStream(
            open_stream, _LocalStreamParser(), provider=self.provider, model=self.name, pricing=self.pricing
        )

    def __repr__(self) -> str:
        return f"<LocalModel local:{self.name} {self.path.name} n_ctx={self.n_ctx}{' loaded' if self.loaded else ''}>"

    # ----------------------------------------------------------------------------- internals

    def _request(
        self, messages: MessagesInput, call_settings: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any], _Fit]:
        settings = merge_settings(self.settings, call_settings)
        conversation = to_messages(messages)
        encoded = [encode_message(m) for m in conversation]
        # Overridden below by the call's settings and then by its extra_body.
        options: dict[str, Any] = sampling_defaults(embedded=self.embedded)
        for key in _SETTINGS_PASSED:
            if key in settings:
                options[key] = settings[key]  # type: ignore[literal-required]
        if "stop" in settings:
            stop = settings["stop"]
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        if settings.get("tools"):
            options["tools"] = [encode_tool(t) for t in settings["tools"]]
        if "tool_choice" in settings:
            options["tool_choice"] = encode_tool_choice(
                settings["tool_choice"], options.get("tools", []), provider=self.provider, model=self.name
            )
        if "response_format" in settings:
            fmt = encode_response_format(settings["response_format"])
            if fmt is not None:
                options["response_format"] = fmt
        extra = dict(settings.get("extra_body") or {})
        if extra:
            check_extra(extra)
            options.update(extra)
        # What the pre-flight context check reads: the model's input as UTF-8 bytes bounds its tokens.
        read = [encoded, options.get("tools"), options.get("response_format")]
        payload = len(json.dumps(read, ensure_ascii=False).encode("utf-8"))
        return encoded, options, (conversation, settings, payload)

    def _generate(
        self, encoded: list[dict[str, Any]], options: dict[str, Any], interrupt: Interrupt, fit: _Fit
    ) -> ChatResponse:
        check_context(self, *fit)  # in the worker thread for achat: counting may load the weights
        runtime = self.load()
        started = time.perf_counter()
        if not interrupt.acquire(runtime.lock):
            if interrupt.timed_out:
                raise interrupt.timeout_error(waiting=True, provider=self.provider, model=self.name)
            raise _Abandoned
        try:
            call = dict(options)
            guard: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
            if interrupt.active:
                # While the prompt is read the abort callback can stop llama.cpp; once tokens are
                # sampled, forcing end-of-sequence ends the answer cleanly.
                call["logits_processor"] = interrupt.logits_processor(runtime.llama.token_eos())
                guard = runtime.abort_when(interrupt.due)
            raw: Any = None
            with self._translate(interrupt), guard:
                raw = runtime.llama.create_chat_completion(messages=encoded, **call)
        finally:
            runtime.lock.release()
        if interrupt.timed_out:
            # The answer was cut at an arbitrary token: not an answer the caller asked for.
            raise interrupt.timeout_error(waiting=False, provider=self.provider, model=self.name)
        response = self._codec.parse_response(raw, Reply(200, httpx.Headers()))
        return response.model_copy(
            update={
                "provider": self.provider,
                "model": self.name,
                "latency": time.perf_counter() - started,
                "cost": self.pricing.cost(response.usage),
            }
        )

    @contextlib.contextmanager
    def _translate(self, interrupt: Interrupt | None = None) -> Iterator[None]:
        """llama-cpp-python raises plain ValueError/RuntimeError; give callers typed errors."""
        try:
            yield
        except ModelMixError:
            raise
        except ValueError as exc:
            found = _OVERFLOW.search(str(exc))
            if found:
                requested, limit = int(found.group(1)), int(found.group(2))
                raise ContextLengthExceededError(
                    f"the prompt needs {requested} tokens but the local model's context window is {limit}; "
                    "shorten the conversation or load the model with a larger n_ctx",
                    limit=limit,
                    requested=requested,
                    status=400,
                    provider=self.provider,
                    model=self.name,
                    phase="local",
                ) from exc
            raise ProviderError(
                f"local generation failed: {exc}", provider=self.provider, model=self.name, phase="local"
            ) from exc
        except TypeError as exc:
            raise ConfigurationError(f"the local backend rejected an option: {exc}") from exc
        except RuntimeError as exc:
            if interrupt is not None and interrupt.timed_out:
                return  # a decode aborted at the deadline: the caller raises the deadline's error
            raise ProviderError(
                f"local generation failed: {exc}", provider=self.provider, model=self.name, phase="local"
            ) from exc


class _Chunks:
    """llama.cpp's chunk dicts, handed to the OpenAI stream parser as they are (no SSE bytes),
    then a usage chunk counted with the model's tokenizer and ``"[DONE]"``. Owns the model lock
    until closed.

    `reading` bounds the first chunk only, which comes once the whole prompt is read: after it,
    the stream's own guard checks the deadline between tokens.
    """

    def __init__(
        self,
        model: LocalModel,
        runtime: LlamaRuntime,
        encoded: list[dict[str, Any]],
        options: dict[str, Any],
        reading: Interrupt,
    ) -> None:
        self._model = model
        self._reading = reading
        self._runtime = runtime
        self._encoded = encoded
        self._options = options
        self._source: Iterator[dict[str, Any]] | None = None
        self._finished = False
        self._released = False
        self._release_lock = threading.Lock()
        self._text: list[str] = []
        self._pending: list[str] = []

    def __iter__(self) -> Iterator[Mapping[str, Any] | str]:
        return self

    def __next__(self) -> Mapping[str, Any] | str:
        chunk = self.next_or_none()
        if chunk is None:
            raise StopIteration
        return chunk

    def next_or_none(self) -> Mapping[str, Any] | str | None:
        if self._pending:
            return self._pending.pop(0)
        if self._finished or self._released:
            return None
        item: dict[str, Any] | None = None
        with self._model._translate(self._reading):
            if self._source is None:
                self._source = iter(
                    self._runtime.llama.create_chat_completion(messages=self._encoded, stream=True, **self._options)
                )
                reading = self._runtime.abort_when(self._reading.due) if self._reading.active else None
                with reading or contextlib.nullcontext():
                    item = next(self._source, None)
            else:
                item = next(self._source, None)
        if self._reading.timed_out:
            self._finished = True
            raise self._reading.timeout_error(waiting=False, provider=self._model.provider, model=self._model.name)
        if item is None:
            self._finished = True
            self._pending.append("[DONE]")
            with self._model._translate():
                return self._usage_chunk()
        self._collect(item)
        return {**item, "model": self._model.name}  # llama.cpp reports the file path

    def _collect(self, item: Mapping[str, Any]) -> None:
        for choice in item.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, Mapping) else None
            if not isinstance(delta, Mapping):
                continue
            if isinstance(delta.get("content"), str):
                self._text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
                    self._text.append(function["arguments"])

    def _usage_chunk(self) -> dict[str, Any]:
        runtime = self._runtime
        prompt = runtime.count_prompt_tokens(self._encoded, self._options.get("tools"))
        if prompt is None:
            prompt = sum(runtime.count_tokens(m["content"]) + 4 for m in self._encoded) + 3
        usage = {"prompt_tokens": prompt, "completion_tokens": runtime.count_tokens("".join(self._text))}
        return {"choices": [], "usage": usage}

    def close(self) -> None:
        with self._release_lock:
            if self._released:
                return
            self._released = True
        try:
            source = self._source
            if source is not None and hasattr(source, "close"):
                source.close()  # GeneratorExit inside llama.cpp's loop: generation stops here
        finally:
            self._runtime.lock.release()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)


class _AsyncChunks:
    """Async iteration over `_Chunks`: each token is produced in a worker thread. A cancelled
    caller waits for at most the token in progress, then the stream closes and frees the model."""

    def __init__(self, source: _Chunks) -> None:
        self._source = source

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> Mapping[str, Any] | str:
        chunk = await anyio.to_thread.run_sync(self._source.next_or_none)
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class _LocalStreamParser(OpenAIStreamParser):
    """The OpenAI chunk parser; usage in a local stream is counted by modelmix (with the model's
    tokenizer), so it is marked estimated."""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return [_estimated(e) for e in super().feed(chunk)]

    def feed_object(self, item: Mapping[str, Any] | str) -> list[StreamEvent]:
        return [_estimated(e) for e in super().feed_object(item)]

    def flush(self) -> list[StreamEvent]:
        return [_estimated(e) for e in super().flush()]


def _estimated(event: StreamEvent) -> StreamEvent:
    if isinstance(event, UsageEvent):
        return UsageEvent(Usage(**{**event.usage.model_dump(), "estimated": True}))
    return event


# --------------------------------------------------------------------------------- registry & listing


class LocalProvider(Provider):
    """GGUF models run in this process: nothing to connect to, models found on disk."""

    name = "local"
    label = "llama.cpp"
    in_process = True
    listing_path = None
    requires = "llama_cpp"
    install_hint = "pip install 'modelmix[local]'"

    def __init__(self, **options: Any) -> None:
        # Nothing to connect to: connection options have no meaning here.
        self.timeout = None

    @classmethod
    def create_model(cls, name: str, **options: Any) -> LocalModel:
        from ._provider import reject_unknown_options

        reject_unknown_options("local", options, ("n_ctx", "n_threads", "settings", "n_ubatch"))
        return LocalModel(name, **options)

    @classmethod
    def available(cls, **options: Any) -> list[AvailableModel]:
        return list_models("local", **options)

    @classmethod
    async def aavailable(cls, **options: Any) -> list[AvailableModel]:
        return list_models("local", **options)

    def __repr__(self) -> str:
        return "<LocalProvider in-process>"


def create(name: str, **options: Any) -> LocalModel:
    """Registry factory for ``local`` / ``local:<path.gguf>``."""
    return LocalModel(name, **options)


def list_models(prefix: str = "local", **options: Any) -> list[AvailableModel]:
    """The local models available without a server: the embedded one and ``$MODELMIX_LOCAL_MODEL``."""
    found: list[AvailableModel] = []
    try:
        path = embedded_gguf()
    except ModelMixError:
        path = None
    if path is not None:
        found.append(
            AvailableModel(
                provider="local",
                id=EMBEDDED_NAME,
                owned_by="HuggingFaceTB",
                size_bytes=path.stat().st_size,
                details={"path": str(path), "embedded": True, "label": EMBEDDED_LABEL},
            )
        )
    configured = os.environ.get(LOCAL_MODEL_ENV, "").strip()
    if configured and Path(configured).expanduser().is_file():
        file = Path(configured).expanduser()
        found.append(
            AvailableModel(
                provider="local",
                id=str(file),
                size_bytes=file.stat().st_size,
                details={"path": str(file), "embedded": False, "env": LOCAL_MODEL_ENV},
            )
        )
    return found


async def alist_models(prefix: str = "local", **options: Any) -> list[AvailableModel]:
    return list_models(prefix, **options)
