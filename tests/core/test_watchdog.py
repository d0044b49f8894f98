"""The shared timer behind sync read limits: it fires at the earliest limit, an idle limit only
runs while the reader waits, and watches that stop early don't pile up in its heap."""

from __future__ import annotations

import threading
import time

from modelmix import _watchdog

GENEROUS = 2.0
"""Seconds a loaded machine may take to run the timer thread (the limits below are 0.1-0.3 s)."""


def _armed(watch: _watchdog.Watch) -> threading.Event:
    interrupted = threading.Event()
    watch.watch(interrupted.set)
    return interrupted


def test_the_earliest_limit_fires_with_its_own_error() -> None:
    watch = _watchdog.Watch()
    watch.deadline_at(time.monotonic() + 30, lambda: RuntimeError("deadline"))
    watch.first_token_at(time.monotonic() + 0.1, lambda: RuntimeError("first token"))
    assert _armed(watch).wait(GENEROUS)
    assert watch.fired is not None
    assert str(watch.fired()) == "first token"


def test_content_ends_the_first_token_limit() -> None:
    watch = _watchdog.Watch()
    watch.first_token_at(time.monotonic() + 0.1, lambda: RuntimeError("first token"))
    interrupted = _armed(watch)
    watch.content_arrived()
    assert not interrupted.wait(0.4)
    assert watch.fired is None
    watch.stop()


def test_the_idle_limit_runs_only_while_the_reader_waits() -> None:
    watch = _watchdog.Watch()
    watch.idle_limit(0.2, lambda: RuntimeError("idle"))
    interrupted = _armed(watch)
    time.sleep(0.4)  # the caller is busy with an event: not idle time
    assert not interrupted.is_set()
    watch.waiting()
    assert interrupted.wait(GENEROUS)
    assert str(watch.fired()) == "idle"  # type: ignore[misc]


def test_a_stopped_watch_never_fires_and_releases_its_limits() -> None:
    watch = _watchdog.Watch()
    watch.deadline_at(time.monotonic() + 0.1, lambda: RuntimeError("deadline"))
    interrupted = _armed(watch)
    watch.stop()
    assert not interrupted.wait(0.4)
    assert watch.due() == (float("inf"), None)


def test_watches_stopped_long_before_their_deadline_do_not_pile_up() -> None:
    for _ in range(3000):
        watch = _watchdog.Watch()
        watch.deadline_at(time.monotonic() + 600, lambda: RuntimeError("deadline"))
        watch.watch(lambda: None)
        watch.stop()
    assert len(_watchdog._TIMER._heap) < 600
