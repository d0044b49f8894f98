"""`RedisStore`: breakers, rate limits and budgets shared by every process that points at one
Redis (or Valkey) server, through redis-py's sync and asyncio clients.

Each operation is one Lua script on one hash-tagged key set (`_redis_scripts.py`): one round trip,
atomic, Redis Cluster safe. The store never makes a call wait on it for long: every command has
its own short timeout, redis-py's retries are off, and after a failure the store stays "down"
(failing fast, without touching the network) for a growing interval before it tries again. The
outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._exceptions import ConfigurationError, MissingDependencyError
from . import _redis_scripts as scripts
from ._breaker import BreakerConfig, BreakerState, Outcome
from ._state_store import (
    BUCKETS,
    BUDGET_LEASE_SECONDS,
    BreakerView,
    BudgetBooks,
    LimitGrant,
    LimitSpec,
    Outage,
    StateStore,
    StoreUnavailable,
    check_lease_seconds,
    from_nanos,
    to_nanos,
)

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    import redis.cluster

__all__ = ["RedisStore"]

logger = logging.getLogger("modelmix")
T = TypeVar("T")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("the Redis store", "redis", "redis") from exc
    return redis


def _tag(kind: str, name: str) -> str:
    # Braces would change which part of the key Redis Cluster hashes.
    return "{" + kind + ":" + name.replace("{", "(").replace("}", ")") + "}"


_POLICY = {"refuse": "refuse calls", "allow": "let calls through uncounted"}


def _seconds(micros: int) -> float | None:
    return None if micros < 0 else micros / 1_000_000


class _Health:
    """The store's own breaker: after a failure, fail fast for `interval` seconds (doubling up
    to `max_interval` while the outage lasts), so a dead Redis costs one timeout per interval,
    not one per call."""

    def __init__(self, name: str, interval: float, max_interval: float, policy: str) -> None:
        self.name = name
        self.policy = policy
        self.interval = interval
        self.max_interval = max_interval
        self._next = interval
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def check(self) -> None:
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable(
                f"{self.name} is unreachable (retrying in {self._down_until - time.monotonic():.1f} s)"
            )

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if not self._down:
                logger.warning(
                    "shared state: %s unreachable (%s: %s); %s", self.name, type(exc).__name__, exc, self.policy
                )
            self._down = True
            self._down_until = time.monotonic() + self._next
            self._next = min(self._next * 2, self.max_interval)

    def succeeded(self) -> None:
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    self._next = self.interval
                    logger.warning("shared state: %s reachable again", self.name)


class RedisStore(StateStore):
    """Shared state in Redis or Valkey. Build it with ``mm.shared_state("redis://host:6379/0")``
    or directly; pass `client` to reuse a configured ``redis.Redis``.

    `timeout` bounds every command (seconds); after a failure the store fails fast for
    `retry_interval` seconds (doubling up to 30 s) before trying again. `budget_outage` /
    `limit_outage`: "refuse" or "allow" calls while Redis is unreachable.

    Every script's keys share one hash tag, so the store runs on Redis Cluster: pass a
    ``redis.cluster.RedisCluster`` (with short timeouts and retries off) as `client`. A client
    given this way also serves async calls, from a worker thread.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "modelmix",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        budget_outage: Outage = "refuse",
        limit_outage: Outage = "allow",
        client: redis.Redis | redis.cluster.RedisCluster | None = None,
    ) -> None:
        for name, value in (("budget_outage", budget_outage), ("limit_outage", limit_outage)):
            if value not in ("allow", "refuse"):
                raise ConfigurationError(f"RedisStore({name}={value!r}): 'allow' or 'refuse'")
        for name, seconds in (("timeout", timeout), ("retry_interval", retry_interval)):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
                raise ConfigurationError(f"RedisStore({name}={seconds!r}): seconds, a finite number above 0")
        redis_py = _import_redis()
        self.url = url
        self.prefix = prefix
        self.timeout = float(timeout)
        self.budget_outage = budget_outage
        self.limit_outage = limit_outage
        self._options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            # redis-py retries failed commands by default: a dead server would cost several timeouts.
            "retry": redis_py.retry.Retry(redis_py.backoff.NoBackoff(), 0),
            "retry_on_timeout": False,
            "decode_responses": True,
        }
        self._client: redis.Redis | redis.cluster.RedisCluster = (
            client if client is not None else redis_py.Redis.from_url(url, **self._options)
        )
        self._own_client = client is None
        self._async_clients: weakref.WeakKeyDictionary[Any, redis.asyncio.Redis] = weakref.WeakKeyDictionary()
        self._scripts = {
            "budget": self._client.register_script(scripts.BUDGET),
            "breaker": self._client.register_script(scripts.BREAKER),
            "acquire": self._client.register_script(scripts.LIMIT_ACQUIRE),
            "settle": self._client.register_script(scripts.LIMIT_SETTLE),
        }
        self._async_scripts: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
        policy = (
            f"until it is back, budgets {_POLICY[budget_outage]}, rate limits {_POLICY[limit_outage]}, "
            "and circuit breakers keep each process's own state"
        )
        self._health = _Health(_safe_url(url), retry_interval, 30.0, policy)
        self._offset: float | None = None
        """Server time minus this host's wall time, to name the rate-limit buckets' keys."""
        self._later: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._pending = 0
        self._settled = threading.Condition()
        self._worker: threading.Thread | None = None
        self._worker_pid = 0

    def __repr__(self) -> str:
        return f"RedisStore({_safe_url(self.url)!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------------------ plumbing

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{_tag(kind, name)}"

    def _run(self, command: Callable[[], T]) -> T:
        self._health.check()
        redis = _import_redis()
        try:
            result = command()
        except redis.RedisError as exc:
            self._health.failed(exc)
            raise StoreUnavailable(str(exc)) from exc
        except OSError as exc:
            self._health.failed(exc)
            raise StoreUnavailable(str(exc)) from exc
        self._health.succeeded()
        return result

    async def _arun(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script through the asyncio client (one per event loop); on other event loops (trio),
        or with a client given by the caller (a Redis Cluster client...), the sync client runs in
        a worker thread."""
        if self._own_client is False or _asyncio_loop() is None:
            return await anyio.to_thread.run_sync(lambda: self._run(lambda: self._scripts[name](keys, args)))
        self._health.check()
        redis = _import_redis()
        script = self._async_script(name)
        try:
            with anyio.fail_after(self.timeout * 2):
                result = await script(keys, args)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._health.failed(exc)
            raise StoreUnavailable(str(exc)) from exc
        self._health.succeeded()
        return result

    def _async_script(self, name: str) -> Any:
        loop = asyncio.get_running_loop()
        table = self._async_scripts.get(loop)
        if table is None:
            redis = _import_redis()
            client = redis.asyncio.Redis.from_url(
                self.url,
                **{**self._options, "retry": redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)},
            )
            self._async_clients[loop] = client
            table = self._async_scripts[loop] = {
                "budget": client.register_script(scripts.BUDGET),
                "acquire": client.register_script(scripts.LIMIT_ACQUIRE),
                "settle": client.register_script(scripts.LIMIT_SETTLE),
                "breaker": client.register_script(scripts.BREAKER),
            }
        return table[name]

    # ------------------------------------------------------------------------- bookkeeping

    def later(self, operation: Callable[[], object]) -> None:
        with self._settled:
            self._pending += 1
            if self._worker is None or self._worker_pid != os.getpid() or not self._worker.is_alive():
                # Started on first use in each process: a worker forked from a parent that
                # already had one gets its own.
                self._later = queue.SimpleQueue()
                self._worker_pid = os.getpid()
                self._worker = threading.Thread(target=self._settle_loop, name="modelmix-shared-state", daemon=True)
                self._worker.start()
                atexit.register(self.flush, 2.0)
        self._later.put(operation)

    def _settle_loop(self) -> None:
        jobs = self._later
        while True:
            operation = jobs.get()
            if operation is None:
                return
            try:
                operation()
            except StoreUnavailable:
                pass  # the outage is logged once by the store's health check
            except Exception:  # pragma: no cover - a bug must not kill the thread
                logger.exception("shared state: a settlement failed")
            finally:
                with self._settled:
                    self._pending -= 1
                    self._settled.notify_all()

    def flush(self, timeout: float = 1.0) -> bool:
        with self._settled:
            return self._settled.wait_for(lambda: self._pending <= 0, timeout)

    def ping(self) -> bool:
        """True if the server answers now (never raises)."""
        try:
            return bool(self._run(self._client.ping))
        except StoreUnavailable:
            return False

    def close(self) -> None:
        self.flush()
        if self._worker is not None and self._worker_pid == os.getpid():
            self._later.put(None)
        self._client.close()

    async def aclose(self) -> None:
        loop = _asyncio_loop()
        if loop is None:
            return
        client = self._async_clients.pop(loop, None)
        self._async_scripts.pop(loop, None)
        if client is not None:
            await client.aclose()

    # ----------------------------------------------------------------------------- budgets

    @staticmethod
    def _books(reply: list[Any]) -> BudgetBooks:
        lease = reply[3].decode() if isinstance(reply[3], bytes) else reply[3]  # a given client may not decode
        return BudgetBooks(bool(int(reply[0])), from_nanos(int(reply[1])), from_nanos(int(reply[2])), lease)

    def _budget_keys(self, scope: str) -> list[str]:
        books = self._key("budget", scope)
        return [books, f"{books}:leases"]

    @staticmethod
    def _reserve_args(max_usd: Decimal, amount: Decimal, lease_seconds: float) -> list[Any]:
        seconds = check_lease_seconds("budget_reserve", lease_seconds)
        # The id is drawn here, not in the script: Lua on Redis has no good source of randomness.
        return ["reserve", to_nanos(max_usd), to_nanos(amount), repr(seconds), uuid.uuid4().hex]

    def _budget(self, scope: str, args: list[Any]) -> BudgetBooks:
        keys = self._budget_keys(scope)
        return self._books(self._run(lambda: self._scripts["budget"](keys, args)))

    def budget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        return self._budget(scope, self._reserve_args(max_usd, amount, lease_seconds))

    def budget_settle(self, scope: str, lease: str, cost: Decimal) -> BudgetBooks:
        return self._budget(scope, ["settle", lease, to_nanos(cost)])

    def budget_books(self, scope: str) -> BudgetBooks:
        return self._budget(scope, ["books"])

    def budget_reset(self, scope: str) -> None:
        self._budget(scope, ["reset"])

    async def abudget_reserve(
        self, scope: str, max_usd: Decimal, amount: Decimal, lease_seconds: float = BUDGET_LEASE_SECONDS
    ) -> BudgetBooks:
        args = self._reserve_args(max_usd, amount, lease_seconds)
        return self._books(await self._arun("budget", self._budget_keys(scope), args))

    async def abudget_settle(self, scope: str, lease: str, cost: Decimal) -> BudgetBooks:
        args = ["settle", lease, to_nanos(cost)]
        return self._books(await self._arun("budget", self._budget_keys(scope), args))

    # ---------------------------------------------------------------------------- breakers

    def _breaker(self, op: str, key: str, config: BreakerConfig, **options: Any) -> BreakerView:
        """Run the breaker script (`options`: those of `_breaker_call`)."""
        keys, args = self._breaker_call(op, key, config, **options)
        return _breaker_view(self._run(lambda: self._scripts["breaker"](keys, args)))

    def _breaker_call(
        self,
        op: str,
        key: str,
        config: BreakerConfig,
        *,
        outcome: str = "",
        retry_after: float | None = None,
        probe: bool = False,
        jitter: float = 1.0,
        ignore_cooldown: bool = False,
    ) -> tuple[list[str], list[Any]]:
        """The breaker script's keys and arguments for `op`."""
        args = [
            op,
            outcome,
            repr(float(retry_after)) if retry_after is not None and retry_after > 0 else "-1",
            "1" if probe else "0",
            repr(float(jitter)),
            "1" if ignore_cooldown else "0",
            config.window,
            config.min_calls,
            repr(float(config.failure_rate)),
            config.consecutive_failures,
            repr(float(config.open_base)),
            repr(float(config.open_cap)),
            config.probe_failures,
            repr(float(config.probe_timeout)),
            repr(float(config.misconfigured_open)),
            repr(float(config.rate_limit_cooldown)),
        ]
        return [self._key("breaker", key)], args

    def breaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        return self._breaker("admit", key, config, ignore_cooldown=ignore_cooldown)

    async def abreaker_admit(self, key: str, config: BreakerConfig, *, ignore_cooldown: bool = False) -> BreakerView:
        keys, args = self._breaker_call("admit", key, config, ignore_cooldown=ignore_cooldown)
        return _breaker_view(await self._arun("breaker", keys, args))

    def breaker_record(
        self,
        key: str,
        config: BreakerConfig,
        outcome: Outcome,
        *,
        retry_after: float | None = None,
        probe: bool = False,
        jitter: float = 1.0,
    ) -> BreakerView:
        return self._breaker(
            "record", key, config, outcome=outcome, retry_after=retry_after, probe=probe, jitter=jitter
        )

    def breaker_view(self, key: str, config: BreakerConfig) -> BreakerView:
        return self._breaker("view", key, config)

    def breaker_force_probe(self, key: str, config: BreakerConfig) -> bool:
        return self._breaker("force", key, config).forced

    def breaker_reset(self, key: str) -> None:
        name = self._key("breaker", key)
        self._run(lambda: self._client.delete(name))

    # ------------------------------------------------------------------------- rate limits

    def _server_offset(self, *, again: bool = False) -> float:
        if self._offset is None or again:
            seconds, micros = self._run(self._client.time)
            self._offset = seconds + micros / 1_000_000 - time.time()
        return self._offset

    def _limit_keys(self, scope: str, estimate: int) -> list[str]:
        base = self._key("limit", scope)
        return [f"{base}:b:{b}" for b in range(estimate - BUCKETS, estimate + 2)] + [f"{base}:leases"]

    def _acquire_args(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> tuple[list[str], list[Any]]:
        size = spec.window / BUCKETS
        estimate = math.floor((time.time() + (self._offset or 0.0)) / size)
        args = [
            BUCKETS,
            estimate,
            repr(size),
            spec.rpm or 0,
            spec.tpm or 0,
            spec.max_concurrency or 0,
            tokens,
            lease,
            repr(float(spec.lease_seconds)),
        ]
        return self._limit_keys(scope, estimate), args

    @staticmethod
    def _grant(reply: list[Any]) -> LimitGrant | None:
        if int(reply[0]) < 0:
            return None  # our estimate of the server's clock is off: measure it again
        wait = int(reply[1])
        return LimitGrant(int(reply[0]) == 1, math.inf if wait < 0 else wait / 1_000_000, reply[2], int(reply[3]))

    def limit_acquire(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> LimitGrant:
        self._server_offset()
        for _attempt in range(2):
            keys, args = self._acquire_args(scope, spec, tokens, lease)
            grant = self._grant(self._run(partial(self._scripts["acquire"], keys, args)))
            if grant is not None:
                return grant
            self._server_offset(again=True)
        raise StoreUnavailable("the server's clock keeps moving away from this host's")

    def limit_settle(
        self, scope: str, spec: LimitSpec, grant: LimitGrant, lease: str, reserved: int, used: int
    ) -> None:
        keys = self._settle_keys(scope, grant)
        self._run(lambda: self._scripts["settle"](keys, [lease, used - reserved]))

    def _settle_keys(self, scope: str, grant: LimitGrant) -> list[str]:
        base = self._key("limit", scope)
        return [f"{base}:b:{grant.window}", f"{base}:leases"]

    async def alimit_acquire(self, scope: str, spec: LimitSpec, tokens: int, lease: str) -> LimitGrant:
        if self._offset is None:
            await anyio.to_thread.run_sync(self._server_offset)
        for _attempt in range(2):
            keys, args = self._acquire_args(scope, spec, tokens, lease)
            grant = self._grant(await self._arun("acquire", keys, args))
            if grant is not None:
                return grant
            await anyio.to_thread.run_sync(lambda: self._server_offset(again=True))
        raise StoreUnavailable("the server's clock keeps moving away from this host's")

    async def alimit_settle(
        self, scope: str, spec: LimitSpec, grant: LimitGrant, lease: str, reserved: int, used: int
    ) -> None:
        await self._arun("settle", self._settle_keys(scope, grant), [lease, used - reserved])


def _asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, or None (trio, or no event loop at all)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _safe_url(url: str) -> str:
    """The URL without a password, for logs and reprs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…@{rest.rpartition('@')[2]}"


def _breaker_view(reply: list[Any]) -> BreakerView:
    """The breaker script's reply as a view."""
    admission = reply[0]
    return BreakerView(
        admission="call" if admission == "call" else "probe" if admission == "probe" else None,
        forced=admission == "forced",
        state=BreakerState(reply[1]),
        reopen_in=_seconds(int(reply[2])),
        cooldown_in=_seconds(int(reply[3])),
        times_opened=int(reply[4]),
        calls=int(reply[5]),
        failures=int(reply[6]),
        consecutive_failures=int(reply[7]),
    )
