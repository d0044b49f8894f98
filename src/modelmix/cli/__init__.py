"""The ``modelmix`` command.

``modelmix chat [-m MODEL] PROMPT`` streams an answer to the terminal (default: the embedded
local model, so it works on a fresh machine with no key and no network; an in-process model's
answer is capped at `IN_PROCESS_MAX_TOKENS` unless ``--max-tokens`` says otherwise);
``modelmix models`` lists the backends that are configured and reachable, with their models.

Failures print one line naming the error type and exit non-zero: 2 for configuration mistakes
(bad model string, missing key or extra), 1 for provider failures, 130 on Ctrl-C. Set
``MODELMIX_DEBUG=1`` to get the Python traceback as well.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .._exceptions import ConfigurationError, ModelMixError
from .._model import Model
from .._version import __version__

__all__ = ["main"]

EXIT_PROVIDER_ERROR = 1
EXIT_CONFIGURATION_ERROR = 2
EXIT_INTERRUPTED = 130

IN_PROCESS_MAX_TOKENS = 256
"""The answer's length cap when the model runs in this process and ``--max-tokens`` is not given:
an answer in the terminal within seconds on a CPU. A server's model keeps the server's own limit."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmix",
        description="Chat with any model modelmix can reach: local, Ollama, llama.cpp, vLLM, LM Studio, OpenAI, Azure.",
    )
    parser.add_argument("--version", action="version", version=f"modelmix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser("chat", help="stream an answer to PROMPT", description="Stream an answer to PROMPT.")
    chat.add_argument(
        "-m",
        "--model",
        default=None,
        help="a model string such as 'ollama:llama3.2' or 'openai:gpt-4o-mini' "
        "(default: $MODELMIX_MODEL, else the embedded local model)",
    )
    chat.add_argument("-s", "--system", default=None, help="a system message")
    chat.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help=f"cap the answer's length in tokens (default: {IN_PROCESS_MAX_TOKENS} for a model run in this "
        "process, the server's limit otherwise)",
    )
    chat.add_argument("-t", "--temperature", type=float, default=None, help="sampling temperature")
    chat.add_argument("--usage", action="store_true", help="print token usage to stderr after the answer")
    chat.add_argument("prompt", nargs="*", help="the prompt; '-' or nothing reads it from standard input")

    commands.add_parser(
        "models", help="list configured and reachable backends", description="List configured and reachable backends."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelmix`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args, sys.stdout, sys.stderr)
        if args.command == "models":
            from ._models import print_models

            return print_models(sys.stdout)
        _parser().print_help(sys.stderr)
        return EXIT_CONFIGURATION_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("\nmodelmix: interrupted\n")
        return EXIT_INTERRUPTED
    except ModelMixError as exc:
        _report(exc)
        return EXIT_CONFIGURATION_ERROR if isinstance(exc, ConfigurationError) else EXIT_PROVIDER_ERROR
    except BrokenPipeError:  # `modelmix chat ... | head`
        return 0
    except Exception as exc:  # one line, not a traceback, even for a modelmix bug
        _report(exc, internal=True)
        return EXIT_PROVIDER_ERROR


def _report(exc: BaseException, *, internal: bool = False) -> None:
    if os.environ.get("MODELMIX_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    text = " ".join(str(exc).split()) or "(no message)"
    prefix = "internal error: " if internal else ""
    sys.stderr.write(f"modelmix: {prefix}{type(exc).__name__}: {text}\n")


def _read_prompt(words: list[str]) -> str:
    if words and words != ["-"]:
        return " ".join(words)
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigurationError('no prompt: run `modelmix chat "your question"` or pipe the prompt on standard input')
    text = sys.stdin.read().strip()
    if not text:
        raise ConfigurationError("the prompt read from standard input is empty")
    return text


def _announce_load(model: Model, err: TextIO) -> None:
    """Load an in-process model up front, saying so, so the wait is not mistaken for a hang."""
    from ..providers.local import LocalModel

    local = model.unwrap()
    if not isinstance(local, LocalModel) or local.loaded:
        return
    size = local.path.stat().st_size / 1e6
    kind = "embedded model" if local.embedded else "local model"
    err.write(f"Loading {local.label} ({kind}, {size:.0f} MB)... ")
    err.flush()
    started = time.perf_counter()
    local.load()
    err.write(f"ready in {time.perf_counter() - started:.1f} s\n")
    err.flush()


def _default_settings(model: Model) -> dict[str, Any]:
    """Settings the command uses unless its options say otherwise."""
    from ..providers.local import LocalModel

    return {"max_tokens": IN_PROCESS_MAX_TOKENS} if isinstance(model.unwrap(), LocalModel) else {}


def _chat(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .. import _registry
    from .._messages import system, user

    prompt = _read_prompt(list(args.prompt))
    messages = [system(args.system), user(prompt)] if args.system else [user(prompt)]
    with _registry.model(args.model) as model:
        settings = _default_settings(model)
        if args.max_tokens is not None:
            settings["max_tokens"] = args.max_tokens
        if args.temperature is not None:
            settings["temperature"] = args.temperature
        _announce_load(model, err)
        with model.stream(messages, **settings) as stream:
            for delta in stream.text_deltas():
                out.write(delta)
                out.flush()
        response = stream.response
        if response.tool_calls:
            for call in response.tool_calls:
                out.write(f"\n[tool call] {call.name}({call.raw_arguments})")
        out.write("\n")
        out.flush()
        if args.usage and response.usage is not None:
            usage = response.usage
            note = " (estimated)" if usage.estimated else ""
            err.write(
                f"{response.provider}:{response.model or model.name}: {usage.input_tokens} in, "
                f"{usage.output_tokens} out{note}, {response.latency:.2f} s\n"
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
