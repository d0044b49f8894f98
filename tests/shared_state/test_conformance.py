"""The conformance suite every `StateStore` passes: run against the in-memory store (fake clock)
and a real redis-server (its own clock; short windows and generous bounds, never tight timing)."""

from __future__ import annotations

import math
import threading
from decimal import Decimal
from typing import Any

import pytest

from modelmix import ConfigurationError
from modelmix.resilience import BreakerConfig, BreakerState
from modelmix.resilience._state_store import BUCKETS, LimitSpec, bucket_wait

from .conftest import Backend

D = Decimal
# Jitter 0: open windows are exact, so both stores can be compared to one figure.
CONFIG = BreakerConfig(consecutive_failures=3, open_base=0.4, open_cap=2.0, jitter=0.0, probe_failures=1)


# ------------------------------------------------------------------------------------ budgets


def test_reserve_within_the_budget_and_refuse_beyond(backend: Backend) -> None:
    store = backend.store
    first = store.budget_reserve("b", D("1.00"), D("0.60"))
    assert first.ok
    assert first.reserved == D("0.60")
    assert first.spent == 0
    refused = store.budget_reserve("b", D("1.00"), D("0.50"))
    assert not refused.ok
    assert refused.reserved == D("0.60")
    assert store.budget_reserve("b", D("1.00"), D("0.40")).ok  # exactly to the limit


def test_settle_gives_back_the_reservation_and_spends_the_cost(backend: Backend) -> None:
    store = backend.store
    lease = store.budget_reserve("b", D(1), D("0.5")).lease
    books = store.budget_settle("b", lease, D("0.123456789"))
    assert books.spent == D("0.123456789")
    assert books.reserved == 0
    assert store.budget_books("b").spent == D("0.123456789")
    store.budget_settle("b", "", D("0.1"))  # a charge without a reservation
    assert store.budget_books("b").spent == D("0.223456789")
    store.budget_reset("b")
    assert store.budget_books("b").spent == 0


def test_concurrent_reservations_never_exceed_the_budget(backend: Backend) -> None:
    store, granted = backend.store, []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            if store.budget_reserve("b", D("1.00"), D("0.03")).ok:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 33  # 33 × 0.03 = 0.99; the 34th would pass 1.00
    assert store.budget_books("b").reserved == D("0.99")


def test_budgets_are_kept_apart_by_scope(backend: Backend) -> None:
    backend.store.budget_reserve("a", D(1), D(1))
    assert backend.store.budget_reserve("b", D(1), D(1)).ok


@pytest.mark.anyio
async def test_async_reserve_and_settle(backend: Backend) -> None:
    store = backend.store
    try:
        granted = await store.abudget_reserve("b", D(1), D("0.7"))
        assert granted.ok
        assert not (await store.abudget_reserve("b", D(1), D("0.7"))).ok
        books = await store.abudget_settle("b", granted.lease, D("0.2"))
        assert books.spent == D("0.2")
        assert books.reserved == 0
    finally:
        await store.aclose()


# ------------------------------------------------------------------- reservations are leases

SHORT, LONG = 0.3, 60.0
"""Lease lengths: one that ends within the test (the Redis server's clock really passes it), and
one that never does."""


def test_an_unsettled_reservation_comes_back_when_its_lease_ends(backend: Backend) -> None:
    store = backend.store
    orphan = store.budget_reserve("b", D(1), D("0.6"), SHORT)  # its worker dies: never settled
    live = store.budget_reserve("b", D(1), D("0.3"), LONG)
    assert orphan.ok
    assert live.ok
    assert orphan.lease
    assert live.lease != orphan.lease
    assert not store.budget_reserve("b", D(1), D("0.2"), LONG).ok
    backend.advance(SHORT + 0.1)
    # Every operation first gives back the leases that ended; a live one is kept.
    assert store.budget_books("b").reserved == D("0.3")
    assert store.budget_reserve("b", D(1), D("0.7"), LONG).ok
    assert store.budget_books("b").spent == 0


def test_a_settlement_after_its_lease_ended_spends_once_and_gives_back_nothing(backend: Backend) -> None:
    store = backend.store
    late = store.budget_reserve("b", D(1), D("0.4"), SHORT)
    live = store.budget_reserve("b", D(1), D("0.3"), LONG)
    backend.advance(SHORT + 0.1)
    books = store.budget_settle("b", late.lease, D("0.25"))
    assert books.spent == D("0.25")
    assert books.reserved == D("0.3")  # the lease's 0.4 came back once, when it ended: not again
    books = store.budget_settle("b", live.lease, D("0.1"))
    assert (books.spent, books.reserved) == (D("0.35"), D(0))


def test_the_books_never_go_negative(backend: Backend) -> None:
    store = backend.store
    lease = store.budget_reserve("b", D(1), D("0.5"), SHORT).lease
    backend.advance(SHORT + 0.1)
    for _ in range(2):  # the ended lease settled, then settled again
        assert store.budget_settle("b", lease, D(0)).reserved == 0
    assert store.budget_settle("b", "9:not-a-lease", D(0)).reserved == 0
    free = store.budget_reserve("b", D(1), D(0), LONG)
    assert free.ok
    assert free.lease == ""  # nothing set aside, nothing to hold
    # A lease from before a reset takes nothing from the new period's reservations.
    old = store.budget_reserve("b", D(1), D("0.5"), LONG).lease
    store.budget_reset("b")
    assert store.budget_reserve("b", D(1), D("0.2"), LONG).ok
    books = store.budget_settle("b", old, D("0.1"))
    assert (books.spent, books.reserved) == (D("0.1"), D("0.2"))


def test_a_lease_length_must_be_finite_seconds(backend: Backend) -> None:
    for seconds in (0, -1.0, math.inf, math.nan, True):
        with pytest.raises(ConfigurationError, match="lease_seconds"):
            backend.store.budget_reserve("b", D(1), D("0.1"), seconds)


# ----------------------------------------------------------------------------------- breakers


def _fail(backend: Backend, times: int, key: str = "e|m") -> None:
    for _ in range(times):
        backend.store.breaker_record(key, CONFIG, "failure", jitter=1.0)


def test_breaker_opens_after_consecutive_failures(backend: Backend) -> None:
    store = backend.store
    assert store.breaker_admit("e|m", CONFIG).admission == "call"
    _fail(backend, 2)
    assert store.breaker_view("e|m", CONFIG).consecutive_failures == 2
    _fail(backend, 1)
    view = store.breaker_admit("e|m", CONFIG)
    assert view.admission is None
    assert view.state is BreakerState.OPEN
    assert view.reopen_in is not None
    assert 0.1 < view.reopen_in <= 0.4
    assert view.times_opened == 1


def test_one_probe_after_the_open_window_and_success_closes(backend: Backend) -> None:
    store = backend.store
    _fail(backend, 3)
    backend.advance(0.5)
    assert store.breaker_view("e|m", CONFIG).state is BreakerState.HALF_OPEN
    admissions = [store.breaker_admit("e|m", CONFIG).admission for _ in range(5)]
    assert admissions == ["probe", None, None, None, None]
    store.breaker_record("e|m", CONFIG, "success", probe=True)
    assert store.breaker_admit("e|m", CONFIG).admission == "call"
    assert store.breaker_view("e|m", CONFIG).state is BreakerState.CLOSED


@pytest.mark.anyio
async def test_async_admission_grants_one_probe_too(backend: Backend) -> None:
    store = backend.store
    try:
        _fail(backend, 3)
        assert (await store.abreaker_admit("e|m", CONFIG)).admission is None
        backend.advance(0.5)
        admissions = [(await store.abreaker_admit("e|m", CONFIG)).admission for _ in range(3)]
        assert admissions == ["probe", None, None]
        store.breaker_record("e|m", CONFIG, "success", probe=True)
        view = await store.abreaker_admit("e|m", CONFIG)
        assert view.admission == "call"
        assert view.state is BreakerState.CLOSED
    finally:
        await store.aclose()


def test_a_failed_probe_reopens_for_longer(backend: Backend) -> None:
    store = backend.store
    _fail(backend, 3)
    backend.advance(0.5)
    assert store.breaker_admit("e|m", CONFIG).admission == "probe"
    view = store.breaker_record("e|m", CONFIG, "failure", probe=True, jitter=1.0)
    assert view.state is BreakerState.OPEN
    assert view.times_opened == 2
    assert view.reopen_in is not None
    assert 0.5 < view.reopen_in <= 0.8


def test_outcomes_of_calls_let_in_before_opening_are_ignored(backend: Backend) -> None:
    _fail(backend, 3)
    view = backend.store.breaker_record("e|m", CONFIG, "success")
    assert view.state is BreakerState.OPEN


def test_rate_limit_cooldown_steers_new_calls_not_retries(backend: Backend) -> None:
    store = backend.store
    store.breaker_record("e|m", CONFIG, "cooldown", retry_after=0.4)
    view = store.breaker_admit("e|m", CONFIG)
    assert view.admission is None
    assert view.cooldown_in is not None
    assert 0.1 < view.cooldown_in <= 0.4
    assert store.breaker_admit("e|m", CONFIG, ignore_cooldown=True).admission == "call"
    assert view.state is BreakerState.CLOSED  # a 429 is not a failure sample
    backend.advance(0.5)
    assert store.breaker_admit("e|m", CONFIG).admission == "call"


def test_misconfigured_opens_long_and_refuses_panic_probes(backend: Backend) -> None:
    store = backend.store
    view = store.breaker_record("e|m", CONFIG, "misconfigured")
    assert view.state is BreakerState.MISCONFIGURED
    assert view.reopen_in is not None
    assert view.reopen_in > 250
    assert store.breaker_force_probe("e|m", CONFIG) is False


def test_force_probe_lets_one_probe_through_an_open_circuit(backend: Backend) -> None:
    store = backend.store
    _fail(backend, 3)
    assert store.breaker_admit("e|m", CONFIG).admission is None
    assert store.breaker_force_probe("e|m", CONFIG) is True
    assert store.breaker_admit("e|m", CONFIG).admission == "probe"
    assert store.breaker_admit("e|m", CONFIG).admission is None


def test_failure_rate_opens_over_the_window(backend: Backend) -> None:
    store = backend.store
    config = BreakerConfig(window=10, min_calls=10, failure_rate=0.5, consecutive_failures=10, jitter=0.0)
    for i in range(10):
        view = store.breaker_record("rate", config, "failure" if i % 2 else "success", jitter=1.0)
    assert view.state is BreakerState.OPEN


def test_breaker_reset_forgets(backend: Backend) -> None:
    _fail(backend, 3)
    backend.store.breaker_reset("e|m")
    assert backend.store.breaker_admit("e|m", CONFIG).admission == "call"


# -------------------------------------------------------------------------------- rate limits


def test_rpm_grants_up_to_the_limit_then_says_how_long_to_wait(backend: Backend) -> None:
    spec = LimitSpec(rpm=3, window=1.0)
    grants = [backend.store.limit_acquire("s", spec, 0, f"l{i}") for i in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[3].reason == "rpm"
    assert 0 < grants[3].wait <= 2.0
    backend.advance(grants[3].wait + 0.05)
    assert backend.store.limit_acquire("s", spec, 0, "l5").granted


def test_tpm_counts_tokens_and_refuses_a_call_larger_than_the_limit(backend: Backend) -> None:
    spec = LimitSpec(tpm=100, window=1.0)
    assert backend.store.limit_acquire("s", spec, 60, "a").granted
    refused = backend.store.limit_acquire("s", spec, 60, "b")
    assert not refused.granted
    assert refused.reason == "tpm"
    never = backend.store.limit_acquire("s", spec, 101, "c")
    assert not never.granted
    assert math.isinf(never.wait)


def test_settling_gives_back_unused_tokens(backend: Backend) -> None:
    spec = LimitSpec(tpm=100, window=1.0)
    grant = backend.store.limit_acquire("s", spec, 80, "a")
    assert not backend.store.limit_acquire("s", spec, 50, "b").granted
    backend.store.limit_settle("s", spec, grant, "a", 80, 20)
    assert backend.store.limit_acquire("s", spec, 50, "b").granted


def test_concurrency_slots_are_taken_and_given_back(backend: Backend) -> None:
    spec = LimitSpec(max_concurrency=2, lease_seconds=0.3)
    first = backend.store.limit_acquire("s", spec, 0, "a")
    assert backend.store.limit_acquire("s", spec, 0, "b").granted
    refused = backend.store.limit_acquire("s", spec, 0, "c")
    assert not refused.granted
    assert refused.reason == "concurrency"
    assert refused.wait > 0
    backend.store.limit_settle("s", spec, first, "a", 0, 0)
    assert backend.store.limit_acquire("s", spec, 0, "c").granted
    # A process that died holding a slot gives it back when its lease ends.
    backend.advance(0.4)
    assert backend.store.limit_acquire("s", spec, 0, "d").granted
    assert backend.store.limit_acquire("s", spec, 0, "e").granted


@pytest.mark.anyio
async def test_async_acquire_and_settle(backend: Backend) -> None:
    spec = LimitSpec(rpm=1, window=1.0)
    try:
        grant = await backend.store.alimit_acquire("s", spec, 0, "a")
        assert grant.granted
        assert not (await backend.store.alimit_acquire("s", spec, 0, "b")).granted
        await backend.store.alimit_settle("s", spec, grant, "a", 0, 0)
    finally:
        await backend.store.aclose()


# ----------------------------------------------------------------------- the window arithmetic


def test_bucket_wait() -> None:
    empty = [0.0] * (BUCKETS + 1)
    assert bucket_wait(empty, 5, 10, 100, 100.0, 1.0) == 0
    assert math.isinf(bucket_wait(empty, 11, 10, 100, 100.0, 1.0))
    # 8 in the oldest bucket (number 90), 2 in the current one (100): 1 more waits for 90 to drop.
    counts = [8.0] + [0.0] * (BUCKETS - 1) + [2.0]
    assert bucket_wait(counts, 1, 10, 100, 100.25, 1.0) == pytest.approx(101.0 - 100.25)
    # Everything is in the current bucket: it must drop out itself.
    assert bucket_wait([0.0] * BUCKETS + [10.0], 1, 10, 100, 100.5, 1.0) == pytest.approx(111.0 - 100.5)


def test_each_script_touches_keys_of_one_hash_slot(backend: Backend) -> None:
    """Redis Cluster runs a script only when all its keys live in one slot (else CROSSSLOT)."""
    if backend.name != "redis":
        pytest.skip("a Redis property")
    from redis.crc import key_slot

    store: Any = backend.store
    seen: list[list[str]] = []
    for name, script in list(store._scripts.items()):

        def recording(keys: list[str], args: list[Any], script: Any = script) -> Any:
            seen.append(list(keys))
            return script(keys, args)

        store._scripts[name] = recording
    store.budget_reserve("team {a}", D(1), D("0.1"))
    store.breaker_record("https://x|gpt", CONFIG, "failure")
    grant = store.limit_acquire("k", LimitSpec(rpm=5, tpm=50, max_concurrency=2), 5, "l")
    store.limit_settle("k", LimitSpec(rpm=5, tpm=50, max_concurrency=2), grant, "l", 5, 3)
    assert len(seen) == 4
    for keys in seen:
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys
