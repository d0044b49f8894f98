"""Fixtures of the local-backends suite.

- `llama_server`: one real ``python -m llama_cpp.server`` with the embedded SmolLM2 GGUF on
  127.0.0.1 and a free port, started once per session (a deliberately small context window so
  the overflow case is cheap) and stopped after.
- `local_model`: the in-process embedded model (loaded once; every `LocalModel` shares it).
- vcr config for the cassettes recorded from the real server (replayed with record mode "none").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CASSETTE_DIR = HERE / "cassettes"
SERVER_N_CTX = 512
SERVER_ALIAS = "smollm2"
PLACEHOLDER = "REDACTED"

for _name in (
    "LLAMACPP_BASE_URL",
    "LLAMACPP_API_KEY",
    "VLLM_BASE_URL",
    "VLLM_API_KEY",
    "LMSTUDIO_BASE_URL",
    "LMSTUDIO_API_KEY",
    "OPENAI_COMPATIBLE_BASE_URL",
    "OPENAI_COMPATIBLE_API_KEY",
    "OLLAMA_API_KEY",
    "MODELMIX_LOCAL_MODEL",
):
    os.environ.pop(_name, None)


def have_llama_cpp() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


needs_llama = pytest.mark.skipif(not have_llama_cpp(), reason="needs the local extra: pip install 'modelmix[local]'")


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    if not have_llama_cpp():
        pytest.skip("needs the local extra: pip install 'modelmix[local]'")
    from modelmix.providers._llama_runtime import embedded_gguf

    return embedded_gguf()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    n_ctx: int
    alias: str


def _answers_200(url: str) -> bool:
    """A raw-socket GET: vcr patches httpx and http.client, and a readiness probe must never
    land in a cassette."""
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1.0) as sock:
            sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if _answers_200(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server did not become ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A real llama.cpp OpenAI-compatible server for the whole session."""
    if importlib_missing("uvicorn") or importlib_missing("sse_starlette"):
        pytest.skip("needs llama-cpp-python[server] (in the dev extra)")
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    from modelmix.providers._llama_runtime import default_micro_batch

    micro_batch = default_micro_batch()  # the same AMX workaround modelmix applies in-process
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path),
        "--model_alias",
        SERVER_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(SERVER_N_CTX),
        *(["--n_ubatch", str(micro_batch)] if micro_batch is not None else []),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        _wait_ready(process, f"{base_url}/models", log)
        yield LlamaServer(base_url=base_url, n_ctx=SERVER_N_CTX, alias=SERVER_ALIAS)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


# ------------------------------------------------------------------------------------- cassettes

SCRUBBED_REQUEST_HEADERS = ("authorization", "api-key", "x-api-key", "cookie")
SCRUBBED_RESPONSE_HEADERS = ("set-cookie", "date", "x-request-id")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SCRUBBED_RESPONSE_HEADERS:
            headers[name] = [PLACEHOLDER]
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Credentials never reach a cassette; replay ignores the recording server's random port."""
    return {
        "filter_headers": [(name, PLACEHOLDER) for name in SCRUBBED_REQUEST_HEADERS],
        "before_record_response": _scrub_response,
        "match_on": ("method", "scheme", "host", "path", "query", "body"),
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1]
    return str(CASSETTE_DIR / module)
