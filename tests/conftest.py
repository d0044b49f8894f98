"""Shared test configuration. Sub-suites keep their own fixtures in their own conftest.py."""

from __future__ import annotations

import os

import pytest

# Tests never read real credentials from the developer's environment.
for _name in (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OLLAMA_HOST",
    "MODELMIX_MODEL",
):
    os.environ.pop(_name, None)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio by default; suites that must also run on trio parametrize this."""
    return "asyncio"
