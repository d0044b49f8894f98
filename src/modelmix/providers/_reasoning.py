"""The ``reasoning=`` setting in each backend's own words.

One control for users — ``"off"``, ``"minimal"``, ``"low"``, ``"medium"``, ``"high"`` — and the
profile's `reasoning` field says how the backend takes it. A model whose profile has no control
is refused before sending (`modelmix._profile.check_request`), so no level is silently dropped.
"""

from __future__ import annotations

from typing import Any

from .._profile import ReasoningControl

__all__ = ["reasoning_fields"]


def reasoning_fields(level: str, control: ReasoningControl | None) -> dict[str, Any]:
    """The request fields that ask for `level` through `control` (none when there is no control:
    only ``"off"`` gets that far, and a model without a control has nothing to switch off)."""
    if control == "reasoning_effort":
        # OpenAI's own scale; "none" is how its newer reasoning models turn reasoning off.
        return {"reasoning_effort": "none" if level == "off" else level}
    if control == "think":
        # Ollama's switch is on or off for most models (effort strings only exist for gpt-oss).
        return {"think": level != "off"}
    if control == "reasoning_object":
        return {"reasoning": {"enabled": False} if level == "off" else {"effort": level}}
    if control == "chat_template":
        # Qwen3's template switches thinking on or off; the server hands these to the template.
        return {"chat_template_kwargs": {"enable_thinking": level != "off"}}
    return {}
