"""The shipped tiktoken encodings: byte-identical to tiktoken's, loaded offline, once, off the loop."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import tiktoken

import modelmix as mm
from modelmix.tokens import _tiktoken_files, acount_tokens
from modelmix.tokens._tiktoken_files import ENCODINGS, encoding, encoding_facts, shipped_bytes

REPO = Path(__file__).resolve().parents[2]
SHARED_TIKTOKEN = REPO.parent / "shared" / "tiktoken"
SRC = REPO / "src"

TEXTS = [
    "hello world",
    "tiktoken is great!",
    "The quick brown fox jumps over the lazy dog. 1234567890 — “quotes” and 'apostrophes'.",
    "def count(text: str) -> int:\n    return len(text.split())\n\n\n",
    "日本語のテキストと한국어 그리고 中文, emoji 🤖🎉 and accents: café, naïve, Œuvre.",
    "   leading and trailing spaces   \t\ttabs\r\nwindows newline",
    "<|endoftext|> is special only when allowed; <|fim_prefix|> too.",
    "I'm sure they'll've done it; DON'T SHOUT, it's O'Reilly's.",
    "x" * 500 + " " + "9" * 77,
    "",
]


def _reference_encoding(name: str, monkeypatch: pytest.MonkeyPatch) -> tiktoken.Encoding:
    """An Encoding built here, independently of modelmix's loader: ranks parsed from the shared
    file, pattern and special tokens from tiktoken's own constructor (its loader stubbed)."""
    if not SHARED_TIKTOKEN.is_dir():
        pytest.skip("../shared/tiktoken is absent")
    ranks: dict[bytes, int] = {}
    for line in (SHARED_TIKTOKEN / f"{name}.tiktoken").read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    from tiktoken_ext import openai_public  # type: ignore[import-untyped]

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *_a, **_k: ranks)
    spec: dict[str, Any] = getattr(openai_public, name)()
    return tiktoken.Encoding(**spec)


@pytest.mark.parametrize("name", ENCODINGS)
def test_shipped_files_are_the_shared_files_with_tiktokens_digest(name: str) -> None:
    data = shipped_bytes(name)
    assert hashlib.sha256(data).hexdigest() == _tiktoken_files.SHA256[name]
    if SHARED_TIKTOKEN.is_dir():
        assert data == (SHARED_TIKTOKEN / f"{name}.tiktoken").read_bytes()


@pytest.mark.parametrize("name", ENCODINGS)
def test_encodings_match_an_independently_built_tiktoken_encoding(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = encoding(name)
    reference = _reference_encoding(name, monkeypatch)
    assert ours.n_vocab == reference.n_vocab
    assert ours._special_tokens == reference._special_tokens
    for text in TEXTS:
        assert ours.encode(text, disallowed_special=()) == reference.encode(text, disallowed_special=()), text
    assert ours.encode("<|endoftext|>", allowed_special="all") == reference.encode(
        "<|endoftext|>", allowed_special="all"
    )


@pytest.mark.parametrize(
    ("name", "text", "tokens"),
    [
        # Published values (tiktoken's README and OpenAI's cookbook "How to count tokens with tiktoken").
        ("cl100k_base", "hello world", [15339, 1917]),
        ("o200k_base", "hello world", [24912, 2375]),
        ("cl100k_base", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("o200k_base", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
    ],
)
def test_known_token_ids(name: str, text: str, tokens: list[int]) -> None:
    assert encoding(name).encode(text) == tokens


@pytest.mark.parametrize("name", ENCODINGS)
def test_pattern_and_special_tokens_come_from_tiktoken_and_match_the_restated_ones(name: str) -> None:
    from_tiktoken = _tiktoken_files._facts_from_tiktoken(name)
    assert from_tiktoken is not None, "tiktoken's constructor could not be read without its loader"
    assert from_tiktoken == _tiktoken_files._RESTATED[name] == encoding_facts(name)


def test_a_changed_tiktoken_constructor_falls_back_to_the_restated_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiktoken_ext import openai_public

    def downloads_something_else() -> dict[str, Any]:
        return {"pat_str": open("/etc/hostname").read(), "special_tokens": {}}

    monkeypatch.setattr(openai_public, "cl100k_base", downloads_something_else)
    assert _tiktoken_files._facts_from_tiktoken("cl100k_base") is None  # `open` is out of its reach
    assert encoding_facts("cl100k_base") == _tiktoken_files._RESTATED["cl100k_base"]


def test_a_damaged_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_tiktoken_files.SHA256, "cl100k_base", "0" * 64)
    with pytest.raises(mm.ConfigurationError, match="damaged"):
        shipped_bytes("cl100k_base")


def test_unknown_encoding_is_a_configuration_error() -> None:
    with pytest.raises(mm.ConfigurationError, match="o200k_base, cl100k_base"):
        encoding("p50k_base")


# ------------------------------------------------------------------------ offline, no cache

_OFFLINE_SCRIPT = """
import json, os, socket, ssl, sys
import requests
import tiktoken.load

def refuse(*args, **kwargs):
    raise RuntimeError("network use attempted")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
requests.get = refuse

try:
    import tiktoken
    tiktoken.get_encoding("o200k_base")
    plain = "tiktoken downloaded"
except Exception as exc:
    plain = type(exc).__name__ + ": " + str(exc)

from modelmix.tokens import count_tokens
result = {
    "plain_tiktoken": plain,
    "o200k": count_tokens("hello world", model="gpt-4o").tokens,
    "cl100k": count_tokens("hello world", model="gpt-4").tokens,
}
print(json.dumps(result))
"""


def _run_offline(cache_dir: str, tmp_path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TIKTOKEN_CACHE_DIR": cache_dir, "TMPDIR": str(tmp_path)}
    env.pop("DATA_GYM_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_counting_works_with_the_network_blocked_and_an_empty_cache(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    result = _run_offline(str(cache), tmp_path)
    # The block is real: tiktoken on its own tries to download and is stopped ...
    assert "network use attempted" in result["plain_tiktoken"]
    # ... while modelmix counts correctly: 2 tokens + 3 per message + role (1) + 3 for the reply.
    assert result["o200k"] == result["cl100k"] == 9
    assert list(cache.iterdir()) == [], "nothing may be written to tiktoken's cache"


def test_an_unusable_tiktoken_cache_dir_does_not_matter(tmp_path: Path) -> None:
    # tiktoken's own loader raises when a configured cache directory cannot be created; modelmix
    # never touches the cache, so a broken setting elsewhere in the process cannot break counting.
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("x")
    result = _run_offline(str(not_a_directory / "cache"), tmp_path)
    assert result["o200k"] == 9


def test_tiktokens_own_loader_would_write_to_its_cache(tmp_path: Path) -> None:
    # Why modelmix does not call load_tiktoken_bpe on a path as it is: it copies the file into
    # the cache directory (keyed by the path), which the issue rules out.
    script = (
        "import tiktoken.load, sys; "
        f"tiktoken.load.load_tiktoken_bpe(sys.argv[1], expected_hash={_tiktoken_files.SHA256['cl100k_base']!r})"
    )
    cache = tmp_path / "cache"
    source = SRC / "modelmix" / "tokens" / "_encodings" / "cl100k_base.tiktoken"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", script, str(source)], env=env, check=True, timeout=120)
    assert len(list(cache.iterdir())) == 1


# ---------------------------------------------------------------------- once, lazily, off the loop


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> dict[str, tiktoken.Encoding]:
    """An empty table of loaded encodings, so the next use loads again."""
    table: dict[str, tiktoken.Encoding] = {}
    monkeypatch.setattr(_tiktoken_files, "_loaded", table)
    return table


def test_concurrent_first_use_loads_once(fresh_cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = _tiktoken_files._ranks

    def counted(name: str) -> dict[bytes, int]:
        calls.append(name)
        time.sleep(0.05)  # widen the window in which other threads arrive
        return real(name)

    monkeypatch.setattr(_tiktoken_files, "_ranks", counted)
    results: list[tiktoken.Encoding] = []
    threads = [threading.Thread(target=lambda: results.append(encoding("cl100k_base"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["cl100k_base"]
    assert len(results) == 8
    assert all(result is results[0] for result in results)


async def test_async_first_load_does_not_block_the_event_loop(
    fresh_cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _tiktoken_files._ranks

    def slow(name: str) -> dict[bytes, int]:
        time.sleep(0.5)  # a blocking load: on the loop, nothing else could run meanwhile
        return real(name)

    monkeypatch.setattr(_tiktoken_files, "_ranks", slow)
    ticks = 0
    loaded = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not loaded.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    async def load() -> None:
        counted = await acount_tokens("hello world", model="gpt-4o")
        assert counted.tokens == 9
        loaded.set()

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        group.start_soon(load)
    assert ticks >= 10, f"the loop ran only {ticks} times during a 0.5 s load"
    assert "o200k_base" in fresh_cache
