"""How OpenAI's chat format turns a request into prompt tokens (sans-I/O).

The text of each part is counted by the caller's tokenizer; this module adds what the chat format
wraps around it. The recipe is the published one (OpenAI's cookbook "How to count tokens with
tiktoken": 3 tokens per message, the role, 1 more for a ``name``, 3 to prime the reply), and tool
definitions are counted the way the model sees them — rendered as a TypeScript-like
``namespace functions { ... }`` block.

The constants below that are not in the cookbook were measured against the ``usage.prompt_tokens``
of real recorded OpenAI and Azure OpenAI calls (tests/tokens/test_recorded_usage.py replays them):

- tool definitions cost their rendered block plus 5 tokens when the conversation has a system (or
  developer) message and 7 when it has none (gpt-4o-mini and gpt-4-32k agree);
- an assistant tool call and the tool result answering it cost, beyond their framing, the
  function's name twice (the call names it, the result is attributed to it), the arguments, the
  result's text and 4 tokens (counted as 2 each);
- a JSON-schema ``response_format`` costs the schema as compact JSON plus 4 tokens.

With those, 15 of the 17 recorded requests are counted exactly; two are one token high: o3-mini's
(reasoning models frame messages slightly differently) and one with a JSON-schema response format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._messages import ImagePart, Message

__all__ = ["chat_prompt_tokens", "image_tokens", "render_tool_namespace"]

TextTokens = Callable[[str], int]

PER_MESSAGE = 3
PER_NAME = 1
REPLY_PRIMING = 3
PER_TOOL_CALL = 2
PER_TOOL_RESULT = 2
TOOLS_BESIDE_SYSTEM = 5
TOOLS_WITHOUT_SYSTEM = 7
RESPONSE_SCHEMA = 4

# Images (OpenAI's published vision pricing for gpt-4o-class models): 85 tokens at low detail;
# otherwise the image is scaled to fit 2048x2048, then its short side to 768, and each 512-pixel
# tile costs 170 more. An image whose size can't be read from its bytes (a URL) is counted as a
# 1024x1024 one (765 tokens), and the count is then not exact.
IMAGE_BASE = 85
IMAGE_PER_TILE = 170
IMAGE_UNKNOWN_SIZE = 765


def image_tokens(part: ImagePart) -> tuple[int, bool]:
    """Tokens of one image and whether that number is known rather than assumed."""
    if part.detail == "low":
        return IMAGE_BASE, True
    size = _image_size(part.data) if part.data is not None else None
    if size is None:
        return IMAGE_UNKNOWN_SIZE, False
    width, height = size
    fit = min(1.0, 2048 / max(width, height))
    shrink = min(1.0, 768 / (min(width, height) * fit))
    tiles = math.ceil(width * fit * shrink / 512) * math.ceil(height * fit * shrink / 512)
    return IMAGE_BASE + IMAGE_PER_TILE * tiles, True


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF or JPEG header; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):  # start of frame: height, then width
            height = int.from_bytes(data[index + 5 : index + 7], "big")
            return int.from_bytes(data[index + 7 : index + 9], "big"), height
        index += 2 + length
    return None


def chat_prompt_tokens(
    messages: Sequence[Message],
    text_tokens: TextTokens,
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    response_format: Mapping[str, Any] | None = None,
) -> tuple[int, bool]:
    """Prompt tokens of a chat request in OpenAI's format, and whether every part was countable
    (False when an image's size had to be assumed). `tools` are OpenAI tool objects."""
    total = REPLY_PRIMING
    known = True
    called: dict[str, str] = {}  # tool-call id → function name, for the results that answer them
    for message in messages:
        called.update({call.id: call.name for call in message.tool_calls if call.id})
        answered = called.get(message.tool_call_id or "", message.name or "") if message.role == "tool" else ""
        tokens, message_known = _message_tokens(message, text_tokens, answered)
        total += tokens
        known = known and message_known
    functions = [tool["function"] for tool in tools if isinstance(tool.get("function"), Mapping)]
    if functions:
        has_system = any(m.role in ("system", "developer") for m in messages)
        total += text_tokens(render_tool_namespace(functions))
        total += TOOLS_BESIDE_SYSTEM if has_system else TOOLS_WITHOUT_SYSTEM
    schema = _response_schema(response_format)
    if schema is not None:
        total += text_tokens(json.dumps(schema, separators=(",", ":"), ensure_ascii=False)) + RESPONSE_SCHEMA
    return total, known


def _message_tokens(message: Message, text_tokens: TextTokens, answered: str) -> tuple[int, bool]:
    """One message; `answered` is the function a tool result answers."""
    total = PER_MESSAGE + text_tokens(message.role)
    known = True
    if isinstance(message.content, list):
        for part in message.content:
            if isinstance(part, ImagePart):
                tokens, part_known = image_tokens(part)
                total += tokens
                known = known and part_known
    total += text_tokens(message.text)
    if message.role == "tool":
        total += text_tokens(answered) + PER_TOOL_RESULT
    elif message.name:
        total += text_tokens(message.name) + PER_NAME
    for call in message.tool_calls:
        arguments = call.raw_arguments or json.dumps(call.arguments, ensure_ascii=False)
        total += text_tokens(call.name) + text_tokens(arguments) + PER_TOOL_CALL
    return total, known


def _response_schema(response_format: Mapping[str, Any] | None) -> Any:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    wrapper = response_format.get("json_schema")
    return wrapper.get("schema") if isinstance(wrapper, Mapping) else None


# ------------------------------------------------------------------------------ tool rendering


def render_tool_namespace(functions: Sequence[Mapping[str, Any]]) -> str:
    """Function definitions as the model reads them::

    namespace functions {

    // Get the weather.
    type get_weather = (_: {
    // The city.
    city: string,
    unit?: "c" | "f",
    }) => any;

    } // namespace functions
    """
    lines = ["namespace functions {", ""]
    for function in functions:
        description = function.get("description")
        if description:
            lines.append(f"// {description}")
        parameters = function.get("parameters")
        name = function.get("name", "")
        if isinstance(parameters, Mapping) and parameters.get("properties"):
            lines.append(f"type {name} = (_: {{")
            lines.append(_properties(parameters, parameters, 0))
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return "\n".join(lines)


def _properties(node: Mapping[str, Any], root: Mapping[str, Any], indent: int) -> str:
    required = node.get("required") or ()
    lines: list[str] = []
    properties = node.get("properties")
    for name, spec in properties.items() if isinstance(properties, Mapping) else ():
        spec = _resolve(spec, root)
        description = spec.get("description")
        if description and indent < 2:  # the model sees descriptions of the first two levels only
            lines.append(f"// {description}")
        optional = "" if name in required else "?"
        lines.append(f"{name}{optional}: {_type(spec, root, indent)},")
    return "\n".join(" " * indent + line for line in lines)


def _resolve(spec: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """`spec` with a local ``$ref`` (``#/$defs/X``, as pydantic writes nested models) followed."""
    if not isinstance(spec, Mapping):
        return {}
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key) if isinstance(target, Mapping) else None
        if isinstance(target, Mapping):
            return target
    return spec


def _type(spec: Mapping[str, Any], root: Mapping[str, Any], indent: int) -> str:
    if "enum" in spec and isinstance(spec["enum"], list):
        return " | ".join(json.dumps(value, ensure_ascii=False) for value in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"], ensure_ascii=False)
    for key in ("anyOf", "oneOf"):
        if isinstance(spec.get(key), list):
            return " | ".join(_type(_resolve(option, root), root, indent) for option in spec[key])
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(_type({**spec, "type": one}, root, indent) for one in kind)
    if kind in ("number", "integer"):
        return "number"
    if kind in ("string", "boolean", "null"):
        return str(kind)
    if kind == "array":
        items = spec.get("items")
        return f"{_type(_resolve(items, root), root, indent)}[]" if isinstance(items, Mapping) else "any[]"
    if kind == "object" or "properties" in spec:
        return "{\n" + _properties(spec, root, indent + 2) + "\n}"
    return "any"
