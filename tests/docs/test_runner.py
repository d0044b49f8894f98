"""The docs harness itself: block extraction, the opt-out marker, failure messages, the responder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._runner import SKIP_MARKER, BlockFailed, PageRunner, docs_responder, python_blocks

PAGE = f"""# A page

```python
x = 1
```

Some text.

```bash
echo not python
```

{SKIP_MARKER}
```python
this is not valid python
```

!!! note
    ```py title="indented"
    y = x + 1
    ```

~~~python
z = await later(y)
~~~

```python
import modelmix as mm
tiny = mm.model()
```
"""


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.md"
    path.write_text(PAGE, encoding="utf-8")
    return path


def test_extracts_python_blocks_in_order_with_lines(page: Path) -> None:
    blocks = python_blocks(page)
    assert [b.code for b in blocks] == [
        "x = 1\n",
        "this is not valid python\n",
        "y = x + 1\n",
        "z = await later(y)\n",
        "import modelmix as mm\ntiny = mm.model()\n",
    ]
    assert [b.line for b in blocks] == [3, 14, 19, 23, 27]
    assert [b.skip for b in blocks] == [False, True, False, False, False]
    assert [b.needs_local for b in blocks] == [False, False, False, False, True]
    assert blocks[2].label == "page.md, python block 3 (line 19)"


def test_runs_in_one_namespace_with_top_level_await_and_skips(page: Path) -> None:
    async def later(value: int) -> int:
        return value * 10

    runner = PageRunner()
    runner.namespace["later"] = later
    try:
        ran, skipped = runner.run(python_blocks(page), local_missing="no llama here")
        assert ran == 3
        assert runner.namespace["z"] == 20
    finally:
        runner.close()
    assert len(skipped) == 2
    assert "marked" in skipped[0]
    assert "no llama here" in skipped[1]


def test_a_failing_block_names_page_block_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text('```python\nprint("before")\n```\n\n```python\nprint("partial")\n1 / 0\n```\n', encoding="utf-8")
    runner = PageRunner()
    with pytest.raises(BlockFailed) as failure:
        runner.run(python_blocks(path), local_missing=None)
    runner.close()
    message = str(failure.value)
    assert message.startswith("broken.md, python block 2 (line 5) failed: ZeroDivisionError")
    assert "partial" in message  # the block's output so far
    assert "1 / 0" in message  # its code


def test_responder_calls_tools_then_answers_from_the_result() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    call = docs_responder({"model": "m", "messages": [{"role": "user", "content": "Weather in Oslo?"}], "tools": tools})
    assert not isinstance(call, str)
    assert call.tool_calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    answer = docs_responder(
        {"model": "m", "messages": [{"role": "tool", "content": '{"city": "Oslo", "temperature_c": 4}'}]}
    )
    assert answer == "It is fine and 4 °C in Oslo."


def test_responder_refuses_missing_models() -> None:
    reply = docs_responder({"model": "gpt-does-not-exist", "messages": []})
    assert not isinstance(reply, str)
    assert reply.status == 404
