"""How the in-process model samples, and what ends a generation early.

- Defaults. llama-cpp-python samples with no repetition penalty and, without ``max_tokens``,
  generates until the context window is full. A 135M model like the embedded SmolLM2 falls into
  loops ("la France, la France, ...") often enough that an everyday question could run for
  2,000 tokens and half a minute on a CPU. Every local model therefore gets a length cap, and
  the embedded one a mild repetition penalty (1.1, the value that removed the loops in our runs
  without bending short answers); a caller's own setting always wins.
- Interrupts. llama.cpp has no cancel call, so generation is ended from inside the sampler: a
  logits processor forces end-of-sequence at the next token once the async caller has gone
  (cancellation) or the attempt's deadline (set by the resilience layer in `_call_deadline`) has
  passed. A timed-out generation is reported as a read timeout, which the planner turns into
  the call's deadline error when its own deadline is what ran out.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from .._exceptions import TransportError
from ._llama_runtime import import_llama_cpp

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EMBEDDED_REPEAT_PENALTY",
    "Interrupt",
    "acquire_async",
    "sampling_defaults",
]

DEFAULT_MAX_TOKENS = 512
"""Length cap of a local model's answer unless the call (or the model's settings) sets
``max_tokens``: a CPU makes tens of tokens per second, so an unbounded answer can take minutes."""

EMBEDDED_REPEAT_PENALTY = 1.1
"""llama.cpp's ``repeat_penalty`` for the embedded 135M model (llama-cpp-python's default is 1.0)."""

_LOCK_POLL = 0.05


def sampling_defaults(*, embedded: bool) -> dict[str, Any]:
    """llama.cpp options a local model uses unless the call says otherwise."""
    defaults: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS}
    if embedded:
        defaults["repeat_penalty"] = EMBEDDED_REPEAT_PENALTY
    return defaults


class Interrupt:
    """Why one generation should end before the model finishes: the async caller went away
    (`cancelled` is set) or the attempt's deadline (a `time.monotonic` instant) passed."""

    __slots__ = ("cancelled", "end", "timed_out")

    def __init__(self, cancelled: threading.Event | None, end: float | None) -> None:
        self.cancelled = cancelled
        self.end = end
        self.timed_out = False

    @property
    def active(self) -> bool:
        return self.cancelled is not None or self.end is not None

    def due(self) -> bool:
        if self.cancelled is not None and self.cancelled.is_set():
            return True
        if self.end is not None and time.monotonic() >= self.end:
            self.timed_out = True
            return True
        return False

    def seconds_left(self) -> float | None:
        return None if self.end is None else max(self.end - time.monotonic(), 0.0)

    def acquire(self, lock: threading.Lock) -> bool:
        """Wait for the model, giving up when the caller leaves or the deadline passes."""
        if not self.active:
            return lock.acquire()
        while not lock.acquire(timeout=_LOCK_POLL):
            if self.due():
                return False
        return True

    def logits_processor(self, eos_token: int) -> Any:
        """A processor that forces end-of-sequence once the interrupt is due, so generation ends
        at the next token."""
        llama_cpp = import_llama_cpp()

        def force_eos(input_ids: Any, scores: Any) -> Any:
            if self.due():
                scores[:] = -float("inf")
                scores[eos_token] = 0.0
            return scores

        return llama_cpp.LogitsProcessorList([force_eos])

    def timeout_error(self, *, waiting: bool, provider: str, model: str) -> TransportError:
        """The error for a generation (or a wait for the model) cut short by the deadline."""
        if waiting:
            message = "the local model stayed busy with another caller until the attempt's time ran out"
            return TransportError(message, kind="pool_timeout", provider=provider, model=model, phase="local")
        return TransportError(
            "the local model was stopped when the attempt's time ran out, before it finished its answer; "
            "give the call a longer deadline or a smaller max_tokens",
            kind="read_timeout",
            provider=provider,
            model=model,
            phase="local",
        )


async def acquire_async(lock: threading.Lock) -> None:
    """Take a threading lock from async code without blocking the event loop, staying cancellable."""
    while True:
        with anyio.CancelScope(shield=True):
            # Shielded so an acquired lock is never lost to a cancellation arriving at the same time.
            acquired = await anyio.to_thread.run_sync(partial(lock.acquire, timeout=_LOCK_POLL))
        if acquired:
            try:
                await anyio.lowlevel.checkpoint()
            except BaseException:
                lock.release()
                raise
            return
        await anyio.lowlevel.checkpoint()
