"""Fixtures of the Azure suite: a clean environment, the local Azure stub and the VCR settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._stub import AzureStub


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's Azure configuration."""
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def stub() -> Iterator[AzureStub]:
    """One stub for the session (only the recording tests talk to it; replays never reach it)."""
    with AzureStub() as server:
        yield server


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Credentials are filtered out of every recording; replays match on what identifies a route
    (the stub's port changes from run to run, so host and port are not matched).

    The record mode is pytest-recording's ``--record-mode``, ``none`` unless given: CI only
    replays, and a request without a recording fails the test."""
    return {
        "filter_headers": ["api-key", "authorization"],
        "match_on": ["method", "path", "query", "body"],
    }
