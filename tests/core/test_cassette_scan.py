"""Every cassette or recording in the repository is free of anything that looks like a credential.

Scans all YAML/JSON files (tests/cassettes, other suites' cassettes, anything else), structurally
where they parse and as text everywhere. Scrubbed placeholders (REDACTED, DUMMY, <...>, test
values) pass; a real-looking key, bearer token, JWT or credential header value fails.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .._support import REPO

SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".ndjson")
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "site",
    "build",
    "dist",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}

SECRET_HEADERS = {
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "cookie",
    "set-cookie",
    "openai-organization",
    "openai-project",
}
SECRET_KEY_NAME = re.compile(
    r"(?i)(^|[-_])(api[-_]?key|apikey|secret|client[-_]?secret|password|passwd|access[-_]?token|refresh[-_]?token"
    r"|id[-_]?token|auth[-_]?token|bearer|signature|sig|credential|private[-_]?key)$"
)
PLACEHOLDER_WORDS = (
    "redacted",
    "dummy",
    "placeholder",
    "scrubbed",
    "sanitized",
    "filtered",
    "fake",
    "test",
    "example",
    "xxxx",
    "****",
    "not-a-real",
    "your-",
    "your_",
)

SK_KEY = re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{16,}")
BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=\-]{12,})")
JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")
ASSIGNED = re.compile(
    r"(?i)\b(api[-_]?key|secret|password|access[-_]?token|sig|signature|subscription[-_]?key)"
    r"[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9+/_\-.=%]{16,})"
)
LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{40,}={0,2}(?![A-Za-z0-9+/_\-])")


def is_placeholder(value: str) -> bool:
    lowered = value.lower()
    if len(value.strip()) < 8 or not any(c.isalnum() for c in value):
        return True
    if lowered.startswith("<") or "${" in value or "{{" in value:
        return True
    return any(word in lowered for word in PLACEHOLDER_WORDS)


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def text_findings(text: str) -> Iterator[str]:
    for match in SK_KEY.finditer(text):
        if not is_placeholder(match.group(0)):
            yield f"OpenAI-style key {match.group(0)[:7]}…"
    for match in BEARER.finditer(text):
        if not is_placeholder(match.group(1)):
            yield "bearer token"
    for _ in JWT.finditer(text):
        yield "JWT"
    for match in ASSIGNED.finditer(text):
        if not is_placeholder(match.group(2)):
            yield f"{match.group(1)} value"
    for match in LONG_TOKEN.finditer(text):
        token = match.group(0)
        before = text[max(0, match.start() - 7) : match.start()]
        if before.endswith("base64,"):
            continue  # image data URLs
        mixed = any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)
        if mixed and entropy(token) >= 4.5:
            yield f"high-entropy token {token[:4]}…"


def structural_findings(data: Any, key: str = "") -> Iterator[str]:
    if isinstance(data, dict):
        for name, value in data.items():
            yield from structural_findings(value, str(name))
    elif isinstance(data, list):
        for item in data:
            yield from structural_findings(item, key)
    elif isinstance(data, str):
        lowered = key.lower()
        if (lowered in SECRET_HEADERS or SECRET_KEY_NAME.search(lowered)) and not is_placeholder(data):
            yield f"credential in {key!r}"


class _LenientLoader(yaml.SafeLoader):
    """Safe YAML that tolerates tags such as mkdocs' !!python/name (their values are kept as text)."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_LenientLoader.add_multi_constructor("", _any_tag)


def load(path: Path, text: str) -> Any:
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.load(text, Loader=_LenientLoader)
        if path.suffix == ".json":
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (yaml.YAMLError, ValueError):
        return None


def findings(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = list(text_findings(text))
    data = load(path, text)
    if data is not None:
        found += structural_findings(data)
    return found


def recording_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        files += [Path(directory, name) for name in names if name.endswith(SUFFIXES)]
    return sorted(files)


def test_every_recording_in_the_repository_is_clean() -> None:
    files = recording_files(REPO)
    ours = [f for f in files if "cassettes" in f.parts]
    assert ours, "the scan found no cassettes at all: is the walk broken?"
    problems = {str(f.relative_to(REPO)): found for f in files if (found := findings(f))}
    assert problems == {}


# ------------------------------------------------------------------------------ the scanner itself

VCR_HEADERS = """
interactions:
- request:
    headers:
      {name}:
      - {value}
"""


@pytest.mark.parametrize(
    "secret",
    [
        VCR_HEADERS.format(name="authorization", value="Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"),
        VCR_HEADERS.format(name="api-key", value="4f9d1c2b7a8e4b3d9c0e1f2a3b4c5d6e"),
        VCR_HEADERS.format(name="x-api-key", value="k3yV4lu3W1thMixedCASE99"),
        VCR_HEADERS.format(name="set-cookie", value="session=8f7a6b5c4d3e2f1a; Path=/"),
        VCR_HEADERS.format(name="openai-organization", value="org-AbCdEfGhIjKlMnOp"),
        '{"body": "error: Incorrect API key provided: sk-9aB8cD7eF6gH5iJ4kL3m"}',
        '{"headers": {"authorization": "Bearer abcdefghijklmnopqrstuvwxyz012345"}}',
        '{"token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXBhcnQ"}',
        '{"uri": "https://x.blob.core.windows.net/c?sv=2021&sig=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA%3D"}',
        '{"blob": "Q2hlY2tUaGlzSXNBU2VjcmV0S2V5VmFsdWVXaXRoSGlnaEVudHJvcHk5OA1234567890aBcD"}',
        '{"client_secret": "Qx7~vB2.nM9_zK4-pL1"}',
    ],
    ids=lambda value: f"secret-{zlib.crc32(value.encode()):08x}",
)
def test_scanner_flags_real_looking_secrets(tmp_path: Path, secret: str) -> None:
    path = tmp_path / ("cassette.yaml" if secret.startswith("\n") else "cassette.json")
    path.write_text(secret, encoding="utf-8")
    assert findings(path), f"not flagged: {secret}"


@pytest.mark.parametrize(
    "clean",
    [
        VCR_HEADERS.format(name="authorization", value="REDACTED"),
        VCR_HEADERS.format(name="authorization", value="Bearer REDACTED"),
        VCR_HEADERS.format(name="api-key", value="DUMMY"),
        VCR_HEADERS.format(name="openai-organization", value="test_openai_org_id"),
        VCR_HEADERS.format(name="authorization", value="Bearer <your-key>"),
        VCR_HEADERS.format(name="x-request-id", value="req_902de462837b523f97ef7d2e1e635e0f"),
        '{"message": "Incorrect API key provided: sk-. You can find your API key at https://x"}',
        '{"message": "Incorrect API key provided: <not-a-r****key>."}',
        '{"id": "chatcmpl-AfhuL5q147VH6OYeahA32U4bM3p1o", "usage": {"prompt_tokens": 22, "total_tokens": 25}}',
        '{"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"}',
        '{"commit": "935ab4fafc71e3b9c2d1a0f9e8d7c6b5a4f3e2d1", "api_key": "sk-..."}',
        '{"max_tokens": 50, "stop_tokens": ["</s>"], "token": ""}',
    ],
    ids=lambda value: f"clean-{zlib.crc32(value.encode()):08x}",
)
def test_scanner_passes_placeholders(tmp_path: Path, clean: str) -> None:
    path = tmp_path / ("cassette.yaml" if clean.startswith("\n") else "cassette.json")
    path.write_text(clean, encoding="utf-8")
    assert findings(path) == []


def test_scanner_reads_tagged_yaml_and_ndjson(tmp_path: Path) -> None:
    tagged = tmp_path / "mkdocs.yml"
    tagged.write_text("emoji: !!python/name:material.extensions.emoji.twemoji\napi_key: Zx9Qw8Er7Ty6Ui5Op4\n")
    assert "credential in 'api_key'" in findings(tagged)
    lines = tmp_path / "log.ndjson"
    lines.write_text('{"password": "hunter2-but-longer"}\n\n{"ok": 1}\n')
    assert "credential in 'password'" in findings(lines)
    broken = tmp_path / "broken.json"
    broken.write_text('{"authorization": "Bearer Zx9Qw8Er7Ty6Ui5Op4As3"')
    assert findings(broken) == ["bearer token"]


def test_walk_skips_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.json").write_text("{}")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "y.yaml").write_text("a: 1")
    assert recording_files(tmp_path) == [tmp_path / "tests" / "y.yaml"]
