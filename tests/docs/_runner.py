"""What the docs tests need: a responder that makes the examples' output make sense, the
environment examples run in, and the extraction of ```python blocks from Markdown pages."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import importlib.util
import inspect
import io
import json
import re
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmix import Model
from modelmix.testing import FakeOpenAIServer, FakeReply

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO / "examples"
DOCS = REPO / "docs"

SKIP_MARKER = "<!-- docs-test: skip -->"
"""Put this HTML comment (invisible on the site) on the line right before a ```python fence whose
code is an illustrative fragment that cannot run. Use it sparingly; say why in the text around."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_NEEDS_LOCAL = re.compile(r"\bmodel\(\s*\)|\bmodel\(\s*[\"']local\b|modelmix chat")

# --------------------------------------------------------------------------------------- server


_CANNED = {
    "primary colours": "Red, yellow and blue.",
    "capital of france": "Paris.",
    "capital of italy": "Rome.",
    "capital of japan": "Tokyo.",
    "haiku": "Waves fold into foam / the tide keeps its old promise / salt on the cold wind",
    "hello in five words": "Hello there, lovely to meet!",
    "count from one": "One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve.",
    "long story": "Once upon a time, a small model answered every question it was asked.",
    "cat": "Captain Whiskers.",
    "goodbye": "Goodbye, and thanks for the chat!",
    "one word": "bug",
    "say 'one'": "One.",
    "say 'two'": "Two.",
}
_SAMPLE_VALUES = {"name": "Kyoto", "city": "Kyoto", "country": "Japan"}


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _from_schema(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None, name: str = "") -> Any:
    """A plausible value of a JSON schema: objects filled field by field, one item per list,
    the first choice of an enum or a union, references resolved."""
    defs = defs if defs is not None else schema.get("$defs") or {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _from_schema(defs.get(ref.rsplit("/", 1)[-1], {}), defs, name)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        choices = [c for c in schema.get(key) or [] if isinstance(c, Mapping) and c.get("type") != "null"]
        if choices:
            return _from_schema(choices[0], defs, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            field: _from_schema(spec, defs, field)
            for field, spec in (schema.get("properties") or {}).items()
            if isinstance(spec, Mapping)
        }
    if kind == "array":
        items = schema.get("items")
        return [_from_schema(items, defs, name)] if isinstance(items, Mapping) else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return _SAMPLE_VALUES.get(name, f"example {name}")


def _tool_call(request: Mapping[str, Any], question: str) -> FakeReply:
    functions = [t.get("function", {}) for t in request.get("tools", []) if isinstance(t, Mapping)]
    chosen = functions[0]
    forced = request.get("tool_choice")
    if isinstance(forced, Mapping):
        named = forced.get("function", {}).get("name")
        chosen = next((f for f in functions if f.get("name") == named), chosen)
        if named == "final_result":  # structured output through a forced tool call
            return FakeReply(tool_calls=[{"name": named, "arguments": _from_schema(chosen.get("parameters") or {})}])
    if not isinstance(forced, Mapping):
        for function in functions:
            if str(function.get("name", "")).removeprefix("get_") in question.lower():
                chosen = function
                break
    city = re.search(r"\bin ([A-Z][a-zA-Z]+)", question)
    place = city.group(1) if city else "Paris"
    properties = (chosen.get("parameters") or {}).get("properties") or {}
    arguments = {
        name: place if isinstance(spec, Mapping) and spec.get("type") == "string" else 1
        for name, spec in properties.items()
    }
    return FakeReply(tool_calls=[{"name": chosen.get("name", "tool"), "arguments": arguments}])


def _after_tool(message: Mapping[str, Any]) -> str:
    raw = _content_text(message)
    try:
        result = json.loads(raw)
    except json.JSONDecodeError:
        return f"The tool said: {raw}"
    if isinstance(result, dict) and "temperature_c" in result:
        return f"It is {result.get('sky', 'fine')} and {result['temperature_c']} °C in {result.get('city', 'town')}."
    return f"The tool said: {raw}"


def _schema_in_instructions(messages: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The JSON schema structured output put at the end of the system message, if any."""
    system = next((m for m in messages if m.get("role") == "system"), None)
    if system is None or "JSON schema" not in _content_text(system):
        return None
    try:
        schema = json.loads(_content_text(system).rsplit("\n", 1)[-1])
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, Mapping) else None


def docs_responder(request: dict[str, Any]) -> FakeReply | str:
    """Answers the docs and examples plausibly: canned answers by keyword, tool calls when tools are
    offered, JSON for a response format, and 404 for a model whose name says it does not exist."""
    model = str(request.get("model", ""))
    if "does-not-exist" in model or "nope" in model:
        return FakeReply(text=f"The model `{model}` does not exist or you do not have access to it.", status=404)
    messages = [m for m in request.get("messages", []) if isinstance(m, Mapping)] or [{}]
    last = messages[-1]
    fmt = request.get("response_format")
    if last.get("role") == "tool":
        if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
            return json.dumps(_from_schema(fmt.get("json_schema", {}).get("schema", {})))
        return _after_tool(last)
    question = _content_text(last)
    if request.get("tools") and request.get("tool_choice") != "none":
        return _tool_call(request, question)
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        return json.dumps(_from_schema(fmt.get("json_schema", {}).get("schema", {})))
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        schema = _schema_in_instructions(messages)
        return json.dumps(_from_schema(schema) if schema is not None else {"answer": question})
    lowered = question.lower()
    for keyword, answer in _CANNED.items():
        if keyword in lowered:
            return answer
    return f"You said: {question}" if question else "Hello!"


def start_docs_server() -> FakeOpenAIServer:
    return FakeOpenAIServer(reply=docs_responder).start()


def example_env(server: FakeOpenAIServer) -> dict[str, str]:
    """Credentials and endpoints of every provider, all pointing at the fake server."""
    return {
        "OPENAI_API_KEY": "sk-test-docs-0000000000000000",
        "OPENAI_BASE_URL": server.base_url,
        "AZURE_OPENAI_ENDPOINT": server.url,
        "AZURE_OPENAI_API_KEY": "azure-test-docs-00000000",
    }


# --------------------------------------------------------------------------------------- local


def local_model_unavailable() -> str | None:
    """Why blocks needing the embedded local model cannot run here, or None when they can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[local]')"
    import modelmix as mm

    if "local" not in mm.list_providers() or importlib.util.find_spec("modelmix.providers.local") is None:
        return "the 'local' provider is not part of this build yet"
    return None


# --------------------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class CodeBlock:
    page: str
    number: int
    """1-based position among the page's python blocks."""
    line: int
    """1-based line of the opening fence."""
    code: str
    skip: bool
    needs_local: bool

    @property
    def label(self) -> str:
        return f"{self.page}, python block {self.number} (line {self.line})"


def python_blocks(path: Path) -> list[CodeBlock]:
    """Every ```python / ```py block of a Markdown page, in order, dedented."""
    page = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        language = info.lstrip("{.").split()[0].lower() if info else ""
        if language not in ("python", "py"):
            continue
        previous = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        code = "\n".join(body) + "\n"
        blocks.append(
            CodeBlock(
                page=page,
                number=len(blocks) + 1,
                line=start + 1,
                code=code,
                skip=previous == SKIP_MARKER,
                needs_local=bool(_NEEDS_LOCAL.search(code)),
            )
        )
    return blocks


def doc_pages() -> list[Path]:
    return sorted([*DOCS.rglob("*.md"), REPO / "README.md"])


class BlockFailed(Exception):
    """A docs block raised; the message names the page and block and shows code, output, traceback."""


def _live_models() -> list[Model]:
    return [obj for obj in gc.get_objects() if isinstance(obj, Model)]


class PageRunner:
    """Runs one page's blocks in order in one namespace, like a reader pasting them into one
    session: blocks with top-level ``await`` share one event loop, as in a notebook. Models the
    page creates are kept alive until `close()` closes them all — also ones a later block rebinds
    a name away from (``chain = ...`` twice) — so their pooled sockets are closed, not left to the
    garbage collector and reported as ResourceWarnings in some later test."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self._models_before: weakref.WeakSet[Model] = weakref.WeakSet(_live_models())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._created: list[Model] = []

    def _keep_new_models(self) -> None:
        known = {id(model) for model in self._created}
        for model in _live_models():
            if model not in self._models_before and id(model) not in known:
                self._created.append(model)

    def run(self, blocks: list[CodeBlock], *, local_missing: str | None) -> tuple[int, list[str]]:
        """Run the blocks; return (how many ran, why the others were skipped)."""
        ran, skipped = 0, []
        for block in blocks:
            if block.skip:
                skipped.append(f"{block.label}: marked {SKIP_MARKER}")
                continue
            if block.needs_local and local_missing:
                skipped.append(f"{block.label}: needs the embedded local model, but {local_missing}")
                continue
            output = io.StringIO()
            try:
                with contextlib.redirect_stdout(output):
                    self._run_block(block)
                self._keep_new_models()
            except Exception as exc:
                raise BlockFailed(
                    f"{block.label} failed: {type(exc).__name__}: {exc}\n"
                    f"--- code\n{block.code}--- output\n{output.getvalue()}--- traceback\n{traceback.format_exc()}"
                ) from None  # the message already holds the traceback
            ran += 1
        return ran, skipped

    def _run_block(self, block: CodeBlock) -> None:
        code = compile(block.code, f"<{block.label}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        if code.co_flags & inspect.CO_COROUTINE:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(eval(code, self.namespace))
        else:
            exec(code, self.namespace)

    def close(self) -> None:
        self._keep_new_models()
        loop = self._loop or asyncio.new_event_loop()
        try:
            for model in self._created:
                try:
                    loop.run_until_complete(model.aclose())
                except Exception:  # e.g. an async client bound to a block's own, finished loop
                    model.close()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            self._loop = None
            self._created.clear()
            self.namespace.clear()
            gc.collect()
