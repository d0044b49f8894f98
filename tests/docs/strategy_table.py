"""The table of structured-output strategies in docs/structured-output.md, generated from the
models' capability profiles (a test checks the page holds exactly this table).

Regenerate the page's table after changing a profile:

    python -m tests.docs.strategy_table --write
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import modelmix as mm
from modelmix._structured import choose_strategy

PAGE = Path(__file__).resolve().parents[2] / "docs" / "structured-output.md"
START = "<!-- strategy-table:start -->"
END = "<!-- strategy-table:end -->"

_AZURE_OPENAI = {"base_url": "https://example.openai.azure.com", "api_key": "k", "api_version": "2024-10-21"}
_AZURE_CATALOG = {"base_url": "https://example.services.ai.azure.com/models", "api_key": "k"}

# (backend as the docs name it, model string, options to build it offline)
ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("OpenAI", "openai:gpt-4o-mini", {"api_key": "sk-x"}),
    ("OpenAI", "openai:o3-mini", {"api_key": "sk-x"}),
    ("OpenAI", "openai:gpt-3.5-turbo", {"api_key": "sk-x"}),
    ("Azure OpenAI", "azure:gpt-4o", _AZURE_OPENAI),
    ("Azure OpenAI", "azure:o1-mini", _AZURE_OPENAI),
    ("Azure AI catalog", "azure:Mistral-Large-2411", _AZURE_CATALOG),
    ("Azure AI catalog", "azure:Llama-3.3-70B-Instruct", _AZURE_CATALOG),
    ("Azure AI catalog", "azure:Phi-4", _AZURE_CATALOG),
    ("Azure AI catalog", "azure:DeepSeek-R1", _AZURE_CATALOG),
    ("Ollama", "ollama:llama3.2", {}),
    ("llama.cpp server", "llamacpp:any", {}),
    ("vLLM", "vllm:any", {}),
    ("LM Studio", "lmstudio:any", {}),
    ("other OpenAI-compatible", "openai-compatible:any", {"base_url": "http://127.0.0.1:9"}),
    ("in-process", "local:embedded", {}),
]


def _wire(strategy: str, profile: mm.ModelProfile, provider: str) -> str:
    if strategy == "native":
        if provider == "local":
            return "a grammar built from the schema, in process"
        return {
            "response_format": '`response_format: {"type": "json_schema", ...}`, strict when the schema allows',
            "json_object_schema": '`response_format: {"type": "json_object", "schema": ...}`',
            "format": "`format: <schema>`",
            "json_schema": "`json_schema: <schema>`",
        }[profile.json_schema_via]
    if strategy == "tool":
        return "a forced call of the `final_result` tool whose parameters are the schema"
    if strategy == "json":
        return '`response_format: {"type": "json_object"}` + the schema in the system message'
    return "the schema in the system message"


def table() -> str:
    lines = [
        "| backend | model | profile | strategy | how the schema travels |",
        "|---|---|---|---|---|",
    ]
    for backend, name, options in ROWS:
        model = mm.model(name, **options)
        profile = model.profile
        strategy = choose_strategy(profile)
        lines.append(
            f"| {backend} | `{name}` | `{profile.family}` | `{strategy}` | {_wire(strategy, profile, model.provider)} |"
        )
        model.close()
    return "\n".join(lines)


def page_table(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str]) -> int:
    text = PAGE.read_text(encoding="utf-8")
    fresh = table()
    if "--write" in argv:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        PAGE.write_text(f"{before}{START}\n{fresh}\n{END}{after}", encoding="utf-8")
        return 0
    print(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
