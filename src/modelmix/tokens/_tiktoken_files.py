"""The two tiktoken encodings modelmix ships, loaded offline.

``o200k_base`` (GPT-4o, GPT-4.1, GPT-5, the o-series) and ``cl100k_base`` (GPT-4, GPT-3.5) live in
``_encodings/`` inside the package, byte-identical to the files tiktoken would download: their
SHA-256 digests are tiktoken's own ``expected_hash`` values, and every load checks them.

Three things tiktoken does on its own are avoided on purpose:

- **Downloads.** ``tiktoken.get_encoding`` fetches the files from the internet on first use.
  Here the files are read from the package; nothing ever names a URL to tiktoken's loader.
- **Its cache.** ``tiktoken.load.load_tiktoken_bpe`` reads every path, local ones too, through
  ``read_file_cached``, which looks in and writes a copy to ``TIKTOKEN_CACHE_DIR`` (or
  ``/tmp/data-gym-cache``) and fails when a configured cache directory is not writable; its only
  off switch is a process-wide environment variable. The loader's own code is run with that one
  read replaced by a direct, digest-checked read of the shipped file, so the parsing stays
  tiktoken's and the cache is never touched.
- **Process-wide state.** Nothing is patched: the replacement lives in a private namespace.

The regex and special tokens of each encoding are tiktoken's, read from its installed
``tiktoken_ext/openai_public.py`` the same way (its constructor run with the loader swapped and
nothing else in reach, so it cannot download). Should a future tiktoken change those constructors
beyond that, the values below — restated from tiktoken 0.14 — are used instead.

Loading takes a fraction of a second per encoding, happens once per process and encoding, on
first use, under a lock; `aencoding` does it in a worker thread so an event loop never waits.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import tiktoken
import tiktoken.load

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11 on

__all__ = ["ENCODINGS", "EncodingFacts", "aencoding", "encoding", "encoding_facts", "shipped_bytes"]


@dataclass(frozen=True)
class EncodingFacts:
    """What, besides the rank file, makes a tiktoken encoding."""

    pat_str: str
    special_tokens: Mapping[str, int]


SHA256: Mapping[str, str] = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
ENCODINGS: tuple[str, ...] = tuple(SHA256)
"""The encodings shipped in the package."""

_RESTATED: Mapping[str, EncodingFacts] = {
    "cl100k_base": EncodingFacts(
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": EncodingFacts(
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}

_loaded: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


def _check(name: str) -> None:
    if name not in SHA256:
        raise ConfigurationError(f"unknown encoding {name!r}; modelmix ships {', '.join(ENCODINGS)}")


def _shipped_file(name: str) -> Traversable:
    return resources.files("modelmix.tokens").joinpath("_encodings").joinpath(f"{name}.tiktoken")


def shipped_bytes(name: str) -> bytes:
    """The shipped rank file of `name`, after checking its SHA-256 digest."""
    _check(name)
    data = _shipped_file(name).read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise ConfigurationError(
            f"the shipped encoding file {name}.tiktoken is damaged (its SHA-256 digest is not "
            f"{SHA256[name]}); reinstall modelmix"
        )
    return data


def _run_with(function: Callable[..., Any], names: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Call `function`'s own code with its global names resolved in `names` instead of its
    module: the module itself is left as it is, so other threads never see the replacement."""
    isolated = types.FunctionType(
        function.__code__, dict(names), function.__name__, function.__defaults__, function.__closure__
    )
    isolated.__kwdefaults__ = function.__kwdefaults__
    return isolated(*args, **kwargs)


def _ranks(name: str) -> dict[bytes, int]:
    """tiktoken's `load_tiktoken_bpe` on the shipped file, its cached read swapped for a direct one."""
    data = shipped_bytes(name)

    def read_shipped(_path: str, expected_hash: str | None = None) -> bytes:
        if expected_hash is not None and expected_hash != SHA256[name]:  # pragma: no cover - our own call
            raise ConfigurationError(f"{name}: unexpected digest {expected_hash}")
        return data

    # The loader gets the file's real path: were a future tiktoken to read it through a helper not
    # replaced here, it would still read this local file (with its digest checked), never a URL.
    loader = tiktoken.load.load_tiktoken_bpe
    names = {**vars(tiktoken.load), "read_file_cached": read_shipped, "read_file": read_shipped}
    ranks: dict[bytes, int] = _run_with(loader, names, str(_shipped_file(name)), expected_hash=SHA256[name])
    return ranks


def _facts_from_tiktoken(name: str) -> EncodingFacts | None:
    """The pattern and special tokens from tiktoken's installed constructor for `name`, or None.

    The constructor runs with only its string constants and a stand-in loader in reach (no
    builtins, no modules), so whatever its code tries besides building a dict cannot reach a
    network or a file; anything unexpected fails and the restated facts are used."""
    try:
        openai_public = importlib.import_module("tiktoken_ext.openai_public")
    except ImportError:  # pragma: no cover - tiktoken without its extension module
        return None
    constructor = getattr(openai_public, name, None)
    if not isinstance(constructor, types.FunctionType):
        return None

    def stand_in_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        if not url.endswith(f"/{name}.tiktoken") or expected_hash != SHA256[name]:
            raise LookupError(f"tiktoken's {name} names another file ({url}, {expected_hash})")
        return {}

    constants = {key: value for key, value in vars(openai_public).items() if isinstance(value, str)}
    names = {**constants, "load_tiktoken_bpe": stand_in_loader, "__builtins__": {}}
    try:
        spec = _run_with(constructor, names)
        pat_str, special = spec["pat_str"], spec["special_tokens"]
    except Exception:  # a changed constructor: use the restated facts
        return None
    if not isinstance(pat_str, str) or not isinstance(special, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in special.items()):
        return None
    return EncodingFacts(pat_str=pat_str, special_tokens=dict(special))


def encoding_facts(name: str) -> EncodingFacts:
    """Pattern and special tokens of `name`: tiktoken's own, else the restated ones."""
    _check(name)
    return _facts_from_tiktoken(name) or _RESTATED[name]


def encoding(name: str) -> tiktoken.Encoding:
    """The shipped encoding `name`, loaded on first use (thread-safe, once per process)."""
    found = _loaded.get(name)
    if found is not None:
        return found
    _check(name)
    with _lock:
        found = _loaded.get(name)
        if found is None:
            facts = encoding_facts(name)
            found = tiktoken.Encoding(
                name, pat_str=facts.pat_str, mergeable_ranks=_ranks(name), special_tokens=dict(facts.special_tokens)
            )
            _loaded[name] = found
    return found


async def aencoding(name: str) -> tiktoken.Encoding:
    """`encoding` for async code: a first load runs in a worker thread, never on the event loop."""
    found = _loaded.get(name)
    if found is not None:
        return found
    return await anyio.to_thread.run_sync(encoding, name)
