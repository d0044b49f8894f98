"""Your own hooks on every call: a small ledger of retries, the time spent waiting for them, and
which model answered — the same callbacks modelmix's OpenTelemetry layer is built on.

`Hooks.retry_wait` is told before each wait starts (a server's ``Retry-After``, or the backoff),
with the attempt that failed; `call_finished` when the call is over. Here an in-process model
plays a busy server, and a fake clock stands in for the waits, so the example runs in a blink:

    python examples/retry_hooks.py
"""

from __future__ import annotations

from collections import Counter, defaultdict

import modelmix as mm
from modelmix.observability import CallInfo, Hooks, RetryWait, add_hooks, remove_hooks
from modelmix.testing import FakeClock, FakeReply, FunctionModel


class RetryLedger(Hooks):
    """Counts retries and seconds waited per model; prints one line per wait and per call."""

    def __init__(self) -> None:
        self.retries: Counter[str] = Counter()
        self.waited: defaultdict[str, float] = defaultdict(float)

    def retry_wait(self, wait: RetryWait) -> None:
        who = f"{wait.provider}:{wait.model}"
        self.retries[who] += 1
        self.waited[who] += wait.seconds
        print(f"waiting {wait.seconds:.1f} s before retry {wait.retry_no} of {who} after {wait.error_type}")

    def call_finished(self, call: CallInfo) -> None:
        answered = call.answered_by
        by = f"{answered.provider}:{answered.model}" if answered else "nobody"
        print(f"call {call.outcome} after {len(call.attempts)} attempts, answered by {by}")


def main() -> None:
    clock = FakeClock()
    busy = FunctionModel(
        [
            FakeReply("slow down", status=429, headers={"retry-after": "1"}),
            FakeReply("overloaded", status=503, headers={"retry-after": "2"}),
            FakeReply("Red, yellow and blue."),
        ],
        name="gpt-4o-mini",
        clock=clock,
    )
    model = mm.retrying(busy, max_retries=2, clock=clock)

    ledger = RetryLedger()
    add_hooks(ledger)
    try:
        print("answer:", model.chat("What are the primary colours?").text)
    finally:
        remove_hooks(ledger)
    for who, count in ledger.retries.items():
        print(f"{who}: {count} retries, {ledger.waited[who]:.1f} s waited")


if __name__ == "__main__":
    main()
