"""Every ```python block of docs/**/*.md and README.md runs, in page order, sharing one namespace
per page, with the same environment as the examples (a fake OpenAI-compatible server).

A block preceded by ``<!-- docs-test: skip -->`` is an illustrative fragment and is not run.
Blocks that need the embedded local model run for real when llama-cpp-python and the ``local``
provider are available, and are skipped (with the reason) otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmix.testing import FakeOpenAIServer

from ._runner import (
    REPO,
    SKIP_MARKER,
    BlockFailed,
    PageRunner,
    doc_pages,
    example_env,
    local_model_unavailable,
    python_blocks,
)

PAGES = [page for page in doc_pages() if python_blocks(page)]

# Pages that must exist and be executed: the core guide and the README.
REQUIRED_PAGES = ["README.md", "docs/index.md", "docs/quickstart.md", "docs/messages.md", "docs/streaming.md"]
REQUIRED_PAGES += ["docs/errors.md", "docs/testing.md"]


def test_required_pages_are_executed() -> None:
    executed = {page.relative_to(REPO).as_posix() for page in PAGES}
    missing = [page for page in REQUIRED_PAGES if page not in executed]
    assert not missing, f"these pages have no ```python block to execute: {missing}"


def test_skip_marker_is_rare() -> None:
    """The opt-out is for fragments that cannot run; most blocks must run."""
    blocks = [block for page in PAGES for block in python_blocks(page)]
    skipped = [block.label for block in blocks if block.skip]
    limit = max(3, len(blocks) // 4)
    assert len(skipped) <= limit, f"{len(skipped)} of {len(blocks)} blocks opted out with {SKIP_MARKER}: {skipped}"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_page_code_runs(
    page: Path, docs_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in example_env(docs_server).items():
        monkeypatch.setenv(name, value)
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "MODELMIX_MODEL", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    runner = PageRunner()
    failure: BlockFailed | None = None
    try:
        ran, skipped = runner.run(python_blocks(page), local_missing=local_model_unavailable())
    except BlockFailed as exc:
        failure = exc
    finally:
        runner.close()
    if failure is not None:
        pytest.fail(str(failure), pytrace=False)
    if skipped and not ran:
        pytest.skip("; ".join(skipped))
    for reason in skipped:
        print("skipped", reason)
    assert ran > 0
