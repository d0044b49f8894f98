"""Helpers shared by test modules: loading the shared cassettes and replaying them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_CASSETTES = REPO.parent / "shared" / "cassettes"


def shared_cassettes(backend: str) -> list[Path]:
    """The shared cassette files of one backend directory (empty when ../shared is absent)."""
    directory = SHARED_CASSETTES / backend
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def require_shared(backend: str) -> None:
    """Skip with a clear message when ../shared/cassettes is not there (it is on CI)."""
    if not (SHARED_CASSETTES / backend).is_dir():
        pytest.skip(f"../shared/cassettes/{backend} is absent: conformance tests need the shared cassettes")


def load_cassette(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def chat_cases(backend: str) -> Iterator[Any]:
    """pytest params (cassette, interaction, expected) for every expected fact of a backend."""
    for path in shared_cassettes(backend):
        cassette = load_cassette(path)
        for expected in cassette["expected"]:
            yield pytest.param(
                cassette,
                cassette["interactions"][expected["interaction"]],
                expected,
                id=f"{path.stem}#{expected['interaction']}",
            )


def replay_transport(interaction: dict[str, Any], seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    """A transport answering every request with the recorded response of `interaction`."""
    recorded = interaction["response"]

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(recorded["status"], headers=recorded["headers"], content=recorded["body"].encode("utf-8"))

    return httpx.MockTransport(handler)
