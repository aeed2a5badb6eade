"""Real servers for tests: redis-server and gunicorn on free loopback ports.

One launcher each (``RedisServer``, ``GunicornServer``), one ``free_port``, one
``stop_process``.  Without redis-server on PATH the tests that need it skip with the
reason, except under CI (CI=true), where they fail: CI must exercise them.  The
fixtures that start these servers (``redis_server``, ``start_gunicorn``) are in
tests/conftest.py and stop them whatever the test did.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from .paths import APPS_DIR, REPO_ROOT

STARTUP_DEADLINE = 30.0  # seconds; the machine is shared and can be slow


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a graceful exit, then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def require_executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not on PATH (install it, e.g. apt-get install -y redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so this test must run", pytrace=False)
        pytest.skip(reason)
    return path


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the developer's auth settings, plus ``overrides``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MCP_") and name not in ("JWT_SECRET", "DEBUG")
    }
    env.update(overrides or {})
    return env


def get(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """(status, headers) of a GET; HTTP errors are results, not exceptions."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


class RedisServer:
    """One redis-server process that a test can stop and start again on the same port."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            try:
                if self.client().ping():
                    return
            except Exception as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from exc
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
        self.process = None


class GunicornServer:
    """gunicorn on a free loopback port; ``start()`` waits until ``ready_path`` answers 200.

    ``app`` is a WSGI spec (``"security_app:create_app()"``; None when ``config`` names
    it).  The child gets ``child_environment(env)`` with ``PYTHONPATH`` set to
    ``pythonpath`` (tests/apps and the repository root unless told), runs in ``cwd``,
    and writes stdout and stderr to ``log_path`` (appended across restarts).

    The port is bound by ``--bind`` unless ``bind_env`` names the variable the gunicorn
    config file reads it from; ``hand_over_socket`` binds the socket here and passes it
    as ``fd://`` so no other process can take the port in between.  The server can be
    stopped and started again on the same port.
    """

    def __init__(
        self,
        app: str | None,
        *,
        env: Mapping[str, str],
        log_path: Path,
        workers: int | None = None,
        config: Path | None = None,
        extra_args: Sequence[str] = (),
        graceful_timeout: float | None = None,
        bind_env: str | None = None,
        hand_over_socket: bool = False,
        ready_path: str = "/health",
        cwd: Path = REPO_ROOT,
        pythonpath: Sequence[Path] = (APPS_DIR, REPO_ROOT),
    ) -> None:
        self.app = app
        self.env = child_environment(env)
        self.env["PYTHONPATH"] = os.pathsep.join(str(path) for path in pythonpath)
        self.log_path = log_path
        self.workers = workers
        self.config = config
        self.extra_args = tuple(extra_args)
        self.graceful_timeout = graceful_timeout
        self.bind_env = bind_env
        self.hand_over_socket = hand_over_socket
        self.ready_path = ready_path
        self.cwd = cwd
        self.port = 0 if hand_over_socket else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def start(self) -> GunicornServer:
        command = [sys.executable, "-m", "gunicorn"]
        if self.config is not None:
            command += ["-c", str(self.config)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        if self.graceful_timeout is not None:
            command += ["--graceful-timeout", str(self.graceful_timeout)]
        env = dict(self.env)
        listener = None
        pass_fds: tuple[int, ...] = ()
        if self.hand_over_socket:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            pass_fds = (listener.fileno(),)
            command += ["--bind", f"fd://{listener.fileno()}"]
        elif self.bind_env is not None:
            env[self.bind_env] = f"127.0.0.1:{self.port}"
        else:
            command += ["--bind", f"127.0.0.1:{self.port}"]
        command += self.extra_args
        if self.app is not None:
            command.append(self.app)
        try:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=str(self.cwd),
                    pass_fds=pass_fds,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        finally:
            if listener is not None:
                listener.close()  # gunicorn holds its own copy
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=10) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready:\n{self.output()}")

    def output(self) -> str:
        """What gunicorn wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=timeout)


# -- Sentinel and Cluster ------------------------------------------------------------------


def _start_redis(
    executable: str, port: int, args: Sequence[str], directory: Path
) -> subprocess.Popen[bytes]:
    """A redis-server (or sentinel) on ``port``, run in ``directory``, once it answers PING."""
    import redis

    command = [executable, *args, "--port", str(port), "--bind", "127.0.0.1"]
    log = (directory / f"redis-{port}.log").open("ab")
    with log:
        process = subprocess.Popen(
            command, cwd=str(directory), stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        try:
            if redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping():
                return process
        except Exception as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process, timeout=10)
                raise RuntimeError(f"{command} did not start; see {directory}") from exc
            time.sleep(0.02)


def free_cluster_port() -> int:
    """A free loopback port P whose cluster bus port P + 10000 is free too (P <= 55535)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            for candidate in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = STARTUP_DEADLINE) -> Any:
    """Poll ``condition`` every 50 ms until it returns something true, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except Exception:  # a server still starting or switching roles
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class RedisSentinelDeployment:
    """A primary, a replica (``--replicaof``) and three sentinels monitoring them.

    The sentinels (``redis-server sentinel.conf --sentinel``) watch the primary as
    ``service`` with quorum 2, ``down-after-milliseconds`` 1000 and ``failover-timeout``
    3000, so a killed primary is replaced within a few seconds.  ``start()`` returns once
    the replica is in sync and every sentinel knows the replica and the two other
    sentinels; ``stop()`` stops every process, whatever state the test left them in.
    """

    def __init__(self, executable: str, directory: Path, service: str = "mymaster") -> None:
        self.executable = executable
        self.directory = directory
        self.service = service
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}"

    def client(self, port: int):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> RedisSentinelDeployment:
        data = ["--save", "", "--appendonly", "no"]
        try:
            # No 5 s wait before the replica's first (diskless) sync.
            primary = [*data, "--repl-diskless-sync-delay", "0"]
            self.processes[self.primary_port] = _start_redis(
                self.executable, self.primary_port, primary, self.directory
            )
            replica = [*data, "--replicaof", "127.0.0.1", str(self.primary_port)]
            self.processes[self.replica_port] = _start_redis(
                self.executable, self.replica_port, replica, self.directory
            )
            wait_for(
                lambda: (
                    self.client(self.replica_port).info("replication")["master_link_status"] == "up"
                ),
                "the replica to sync",
            )
            # Each sentinel is told its id, the replica and the other sentinels, as the
            # config file it rewrites would, so none waits for hello messages to find them.
            ids = {port: f"{port:040x}" for port in self.sentinel_ports}
            for port in self.sentinel_ports:
                conf = self.directory / f"sentinel-{port}.conf"
                lines = [
                    f"sentinel myid {ids[port]}",
                    f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 2",
                    f"sentinel down-after-milliseconds {self.service} 1000",
                    f"sentinel failover-timeout {self.service} 3000",
                    f"sentinel known-replica {self.service} 127.0.0.1 {self.replica_port}",
                ]
                lines += [
                    f"sentinel known-sentinel {self.service} 127.0.0.1 {other} {ids[other]}"
                    for other in self.sentinel_ports
                    if other != port
                ]
                conf.write_text("\n".join(lines) + "\n")
                self.processes[port] = _start_redis(
                    self.executable, port, [str(conf), "--sentinel"], self.directory
                )
            for port in self.sentinel_ports:
                sentinel = self.client(port)
                wait_for(
                    lambda s=sentinel: (
                        [r["flags"] for r in s.sentinel_sentinels(self.service)]
                        == ["sentinel", "sentinel"]
                        and [
                            (r["flags"], r["master-link-status"])
                            for r in s.sentinel_slaves(self.service)
                        ]
                        == [("slave", "ok")]
                    ),
                    f"sentinel {port} to reach the replica and the other sentinels",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def master_port(self) -> int:
        """The primary's port as the first sentinel reports it."""
        _, port = self.client(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def kill_primary(self) -> None:
        """SIGKILL the primary: no goodbye to its clients, the replica or the sentinels."""
        process = self.processes.pop(self.primary_port)
        process.kill()
        process.wait(timeout=10)

    def wait_for_failover(self, timeout: float = 30.0) -> None:
        """Until every sentinel names the replica as the primary and the replica says so."""

        def promoted() -> bool:
            for port in self.sentinel_ports:
                _, master = self.client(port).sentinel_get_master_addr_by_name(self.service)
                if int(master) != self.replica_port:
                    return False
            return bool(self.client(self.replica_port).info("replication")["role"] == "master")

        wait_for(promoted, "the sentinels to promote the replica", timeout)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout=10)
        self.processes.clear()


class RedisClusterDeployment:
    """Three primaries (no replicas) on loopback, joined by ``redis-cli --cluster create``.

    ``start()`` returns once every node says ``cluster_state:ok`` and knows all 16384
    slots; ``stop()`` stops every node.
    """

    def __init__(self, executable: str, cli: str, directory: Path, nodes: int = 3) -> None:
        self.executable = executable
        self.cli = cli
        self.directory = directory
        self.ports = [free_cluster_port() for _ in range(nodes)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def client(self, port: int):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> RedisClusterDeployment:
        try:
            for port in self.ports:
                args = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self.directory / f"nodes-{port}.conf"),
                    "--appendonly",
                    "no",
                    "--save",
                    "",
                ]
                self.processes.append(_start_redis(self.executable, port, args, self.directory))
            subprocess.run(
                [
                    self.cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=STARTUP_DEADLINE,
            )
            for port in self.ports:
                node = self.client(port)
                wait_for(
                    lambda n=node: (
                        n.cluster("info")["cluster_state"] == "ok"
                        and int(n.cluster("info")["cluster_slots_ok"]) == 16384
                        and int(n.cluster("info")["cluster_known_nodes"]) == len(self.ports)
                    ),
                    f"cluster node {port} to be ready",
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process, timeout=10)
        self.processes.clear()


class RedisMonitor:
    """``redis-cli MONITOR`` on each of ``ports`` (subprocesses), to count what clients send.

    ``start()`` returns once every monitor is attached; ``stop()`` ends them and returns,
    per port, the commands clients sent as ``(client address, COMMAND, args...)``, in
    order: commands a Lua script ran, this monitor's own end marker and the commands of
    connections named ``sentinel-...`` (the sentinels' pings and hellos) left out.
    """

    END = "redis-monitor-end"

    def __init__(self, cli: str, ports: Sequence[int], directory: Path) -> None:
        self.cli = cli
        self.ports = list(ports)
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def _path(self, port: int) -> Path:
        return self.directory / f"monitor-{port}.txt"

    def _client(self, port: int):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start(self) -> RedisMonitor:
        try:
            for port in self.ports:
                with self._path(port).open("wb") as out:
                    self.processes[port] = subprocess.Popen(
                        [self.cli, "-h", "127.0.0.1", "-p", str(port), "monitor"],
                        stdout=out,
                        stderr=subprocess.DEVNULL,
                    )
            for port in self.ports:
                wait_for(
                    lambda p=port: self._path(p).read_text().startswith("OK"),
                    f"MONITOR on port {port}",
                    timeout=10,
                )
        except BaseException:
            self.close()
            raise
        return self

    def stop(self) -> dict[int, list[tuple[str, ...]]]:
        """What each port saw; every monitor is stopped, whatever happens."""
        import shlex

        try:
            sentinels: dict[int, set[str]] = {}
            for port in self.ports:
                client = self._client(port)
                sentinels[port] = {
                    entry["addr"]
                    for entry in client.client_list()
                    if str(entry.get("name", "")).startswith("sentinel-")
                }
                client.echo(self.END)
            for port in self.ports:
                wait_for(
                    lambda p=port: self.END in self._path(p).read_text(),
                    f"the end of MONITOR on port {port}",
                    timeout=10,
                )
        finally:
            self.close()
        seen: dict[int, list[tuple[str, ...]]] = {}
        for port in self.ports:
            commands = []
            for line in self._path(port).read_text().splitlines()[1:]:
                head, _, rest = line.partition("] ")
                client = head.rpartition(" ")[2]
                words = shlex.split(rest)
                if client == "lua" or client in sentinels[port] or not words:
                    continue
                if words[0].upper() == "ECHO" and words[1:] == [self.END]:
                    # This monitor's own connection: its handshake and CLIENT LIST too.
                    commands = [command for command in commands if command[0] != client]
                    break
                commands.append((client, words[0].upper(), *words[1:]))
            seen[port] = commands
        return seen

    def close(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout=5)
        self.processes.clear()
