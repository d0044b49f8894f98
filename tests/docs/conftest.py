"""Fixtures of the docs suite: one fake OpenAI-compatible server answers every example and snippet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelmix.testing import FakeOpenAIServer

from ._runner import start_docs_server


@pytest.fixture(scope="module")
def docs_server() -> Iterator[FakeOpenAIServer]:
    server = start_docs_server()
    try:
        yield server
    finally:
        server.stop()
