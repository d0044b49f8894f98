"""A real redis-server for the shared-state tests: started on 127.0.0.1 on a free port, with no
persistence, and stopped (or killed and restarted, for the fault tests) by the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = shutil.which("redis-server") or next(
    (path for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.path.exists(path)), None
)
NO_SERVER = "redis-server is not installed (Debian: apt-get install redis-server; scripts/test.sh installs it)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; `kill()` and `start()` again keep the same port."""

    def __init__(self, *extra_args: str) -> None:
        if REDIS_SERVER is None:
            pytest.skip(NO_SERVER)
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                # It could not listen: another process took the port (tests running side by side).
                # Answering PINGs there would be someone else's server, with someone else's data.
                self.process = None
                raise RuntimeError(f"redis-server exited at start: port {self.port} is taken by another process")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG") and self.process.poll() is None:
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """Stop it abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


class RedisClusterServers:
    """Three redis-server processes in cluster mode, each serving a third of the hash slots: the
    smallest Redis Cluster, where a script touching keys of two slots fails with CROSSSLOT."""

    def __init__(self, directory: Path) -> None:
        self.bus_ports = [free_port() for _ in range(3)]
        self.nodes = [
            RedisServer(
                "--cluster-enabled",
                "yes",
                # The bus port defaults to port + 10000, past 65535 for most free ports.
                "--cluster-port",
                str(self.bus_ports[i]),
                "--cluster-config-file",
                f"nodes-{i}.conf",
                "--dir",
                str(directory),
            )
            for i in range(3)
        ]

    def start(self) -> RedisClusterServers:
        import redis

        for node in self.nodes:
            node.start()
        clients: list[Any] = [redis.Redis(port=node.port, decode_responses=True) for node in self.nodes]
        try:
            slots = 16384
            for i, client in enumerate(clients):
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * slots // 3, (i + 1) * slots // 3 - 1)
            for node, bus_port in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
            deadline = time.monotonic() + 20
            while not all(_cluster_ok(client, len(self.nodes)) for client in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError("the redis cluster did not form within 20 s")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()
        return self

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ok(client: Any, nodes: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info if isinstance(info, str) else str(info)
    return "cluster_state:ok" in text and f"cluster_known_nodes:{nodes}" in text
