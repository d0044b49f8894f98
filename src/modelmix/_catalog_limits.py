"""What the model catalog adds to a capability profile: the context window and output limit it
records, and the capabilities a model is known to lack.

Only ever a narrowing: an entry takes away tools or JSON-schema output the model doesn't have,
never grants what the backend's own profile withholds (a catalog route that rejects schemas stays
that way even for a model that supports them elsewhere). For vendor APIs only — a server you run
(vLLM, llama.cpp, Ollama) enforces schemas by itself, whatever the model.
"""

from __future__ import annotations

from typing import Any

__all__ = ["catalog_limits"]


def catalog_limits(model_name: str) -> dict[str, Any]:
    """Profile fields from the catalog entry for `model_name` (empty when it has none)."""
    from .tokens._catalog import model_info  # the catalog file is read on first use

    info = model_info(model_name)
    if info is None:
        return {}
    fields: dict[str, Any] = {}
    if info.context_window is not None:
        fields["context_window"] = info.context_window
    if info.max_output_tokens is not None:
        fields["max_output_tokens"] = info.max_output_tokens
    if info.capabilities is not None:
        for capability in ("tools", "json_schema"):
            if capability not in info.capabilities:
                fields[capability] = False
    return fields
