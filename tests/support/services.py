"""Scale-out and fault fixtures: private Redis and PostgreSQL servers that a test can kill.

The daphne side is ``tests.support.servers``. A fault-injection test swaps a service for
one of its own by overriding ``e2e_redis_url`` or ``e2e_database`` in its module, so
``start_server`` points its processes at a server that the test stops and starts at
will.

Every server started here is stopped by its fixture, whatever the test did.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.support.client import HOST
from tests.support.skips import skip_or_fail

SERVICE_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# REDIS
# ------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A ``redis-server`` of one test's own: no persistence, so a restart comes back empty."""

    binary: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.starts += 1
        log = self.directory / f"redis-{self.starts}.log"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + SERVICE_TIMEOUT
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"redis-server on {self.port} did not start:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is written, every connection drops at once."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(SERVICE_TIMEOUT)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP, as a hung server: connections stay open and every command waits."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the commands that waited are answered."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGCONT)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.directory.glob("*.log"))
        )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free port, killed at the end whatever happened."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("the redis-server binary is not installed")
    assert binary is not None
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(binary=binary, port=free_port(), directory=directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()


# POSTGRESQL
# ------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The newest installed server binaries (Debian keeps them off ``PATH``)."""
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for directory in reversed(candidates):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _run_as() -> list[str] | None:
    """PostgreSQL refuses to run as root: as root, run its tools as ``postgres``."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--"] if runuser else None


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of one test's own in a temporary folder, trust auth."""

    bin_dir: Path
    prefix: list[str]
    directory: Path
    port: int
    database: str = "chat"
    running: bool = field(default=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{self.database}"

    def _tool(self, name: str, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run(
            [*self.prefix, str(self.bin_dir / name), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"{name} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> None:
        self._tool(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses={HOST} -k {self.directory} "
            # fsync off is safe against the crashes a test injects (the kernel keeps
            # the writes); synchronous_commit stays on, or a crash loses acked commits.
            "-c fsync=off -c full_page_writes=off"
        )
        self._tool(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "-t",
            str(int(SERVICE_TIMEOUT)),
            "start",
        )
        self.running = True

    def stop(self) -> None:
        """``-m immediate``: every backend dies at once, as in a crash."""
        self._tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.running = False

    def create_database(self) -> None:
        with psycopg.connect(
            host=HOST, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')

    def kill_leftovers(self) -> None:
        """Last resort when ``pg_ctl stop`` failed: SIGKILL the postmaster by its pid file."""
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A running cluster with an empty database ``chat``; stopped and removed at the end."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        skip_or_fail("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix = _run_as()
    if prefix is None:
        skip_or_fail("running as root with no postgres user (or no runuser) to run PostgreSQL")
    assert bin_dir is not None
    assert prefix is not None
    # Not under tmp_path: pytest makes that 0700 root, which the postgres user cannot enter.
    directory = Path(tempfile.mkdtemp(prefix="chat-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user="postgres", group=None)
    cluster = PostgresCluster(bin_dir=bin_dir, prefix=prefix, directory=directory, port=free_port())
    try:
        cluster.init()
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        if cluster.running or _listening(cluster.port):
            try:
                cluster.stop()
            except BaseException:
                cluster.kill_leftovers()
        shutil.rmtree(directory, ignore_errors=True)
