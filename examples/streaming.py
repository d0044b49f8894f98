"""Streaming: print an answer as it arrives, then read the accumulated response.

Shows `model.stream(...)` as a context manager, `text_deltas()`, typed events (`TextDelta`,
`FinishEvent`, `UsageEvent`), `stream.response` after the end, and leaving a stream early (the
connection is released, nothing leaks).

    export OPENAI_API_KEY=sk-...
    python examples/streaming.py
"""

from __future__ import annotations

import modelmix as mm


def main() -> None:
    with mm.model("openai:gpt-4o-mini") as model:
        # 1. Just the text, as it arrives.
        with model.stream("Write a haiku about the sea.") as stream:
            for delta in stream.text_deltas():
                print(delta, end="", flush=True)
        print()
        final = stream.response
        print(f"[finish: {final.finish_reason}, usage: {final.usage}]")

        # 2. Every typed event.
        with model.stream("Name three primary colours.") as stream:
            for event in stream:
                if isinstance(event, mm.TextDelta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, mm.FinishEvent):
                    print(f"\n[finish event: {event.finish_reason}]")
                elif isinstance(event, mm.UsageEvent):
                    print(f"[usage event: {event.usage.total_tokens} tokens]")

        # 3. Stop early: leaving the block closes the connection.
        received = ""
        with model.stream("Count from one to a hundred, in words.") as stream:
            for delta in stream.text_deltas():
                received += delta
                if len(received) >= 10:
                    break
        print(f"stopped early after {len(received)} characters: {received!r}")


if __name__ == "__main__":
    main()
