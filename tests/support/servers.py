"""End-to-end fixtures: real daphne processes on free ports, each test on a database of its own.

``e2e_database`` creates and migrates one database per test: a SQLite file in the test's
``tmp_path`` when the suite runs on SQLite, a fresh ``e2e_<random>`` database on the same
server (dropped afterwards) when ``DATABASE_URL`` names PostgreSQL. ``start_server`` starts
as many processes as a test needs on that database, all sharing ``REDIS_URL`` (when set)
under one channel-layer prefix of the test's own, so several processes form one
deployment. ``server`` is the common case: one process.

The processes run ``config.settings.base``, as production does, with a fixed secret key
and send limits high enough for the tests. A process that dies during its test, or logs
a traceback, fails the test with its output.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from psycopg import sql

from tests.support.client import HOST, SECRET_KEY, Server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3
# Variables the settings read; the servers get ours, never whatever the shell had.
_SETTINGS_VAR_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "REDIS_",
    "CHANNEL_LAYER_",
    "CHAT_",
    "THROTTLE_",
    "JWT_",
    "CORS_",
)

StartServer = Callable[..., Server]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _server_env(
    *, database_url: str, redis_url: str, channel_prefix: str, extra: dict[str, str | None]
) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SETTINGS_VAR_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DATABASE_URL=database_url,
        # Per user per room; the pagination test sends hundreds of messages quickly.
        CHAT_MESSAGE_RATE="1000",
        CHAT_MESSAGE_BURST="1000",
        # The per-socket frame limit too; the limit tests start servers with their own.
        CHAT_FRAME_RATE="100000",
        CHAT_FRAME_BURST="100000",
        # Every test socket comes from 127.0.0.1, and the soak test opens hundreds.
        CHAT_MAX_SOCKETS_PER_USER="100000",
        CHAT_MAX_SOCKETS_PER_ADDRESS="100000",
        # Register and login throttles count per client address, and with Redis their
        # counters outlive the test: keep them out of the way.
        THROTTLE_REGISTER="100000/minute",
        THROTTLE_LOGIN="100000/minute",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env.update(REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=channel_prefix)
    for name, value in extra.items():  # None unsets a variable (as a bare `make run` has)
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )


def _postgres_admin() -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the suite's PostgreSQL server, outside any test database."""
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres",
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        autocommit=True,
        connect_timeout=5,
    )


def _postgres_url(name: str) -> str:
    """``DATABASE_URL`` with its database name swapped for ``name``."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def e2e_channel_prefix() -> str:
    """The channel-layer (and presence) prefix shared by all of one test's servers."""
    return f"e2e-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def e2e_redis_url(request: pytest.FixtureRequest) -> str:
    """``REDIS_URL`` for the servers, or "" for the in-memory layer (one process only)."""
    if not settings.REDIS_URL:
        return ""
    # Skips, or fails under REQUIRE_SERVICES, when the configured Redis is unreachable.
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def e2e_database(tmp_path: Path, e2e_redis_url: str, e2e_channel_prefix: str) -> Iterator[str]:
    """A migrated database of this test's own; yields its ``DATABASE_URL``."""
    engine = settings.DATABASES["default"]["ENGINE"]
    env_for = {"redis_url": e2e_redis_url, "channel_prefix": e2e_channel_prefix, "extra": {}}
    if connections["default"].vendor == "sqlite":
        url = f"sqlite:///{tmp_path / 'e2e.sqlite3'}"  # an absolute path: four slashes
        _migrate(_server_env(database_url=url, **env_for))
        yield url
        return
    if connections["default"].vendor != "postgresql":
        pytest.fail(f"end-to-end tests support SQLite and PostgreSQL, not {engine}")
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with _postgres_admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _postgres_url(name)
        _migrate(_server_env(database_url=url, **env_for))
        yield url
    finally:
        with _postgres_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _wait_until_ready(server: Server) -> bool:
    """Polls ``/healthz`` until it answers 200; False if the process exited first."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if server.request("GET", "/healthz", timeout=2).status == 200:
                return True
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    pytest.fail(
        f"{server.name} not ready within {READY_TIMEOUT} s:\n{server.output()}", pytrace=False
    )


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def start_server(
    tmp_path: Path, e2e_database: str, e2e_redis_url: str, e2e_channel_prefix: str
) -> Iterator[StartServer]:
    """Factory: ``start_server(database_url=..., env={...}, args=[...], allow_errors=False)``.

    ``args`` are daphne options added to those ``make run`` gives.

    ``env`` adds variables to the servers' environment; a value of None removes one.

    Every call starts one more daphne process and waits until ``/healthz`` answers 200.
    By default the processes share this test's database, Redis and channel prefix.
    """
    servers: list[Server] = []

    def start(
        *,
        database_url: str | None = None,
        env: dict[str, str | None] | None = None,
        args: list[str] | None = None,
        allow_errors: bool = False,
    ) -> Server:
        server_env = _server_env(
            database_url=database_url or e2e_database,
            redis_url=e2e_redis_url,
            channel_prefix=e2e_channel_prefix,
            extra=env or {},
        )
        name = f"server-{len(servers) + 1}"
        for _attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            stdout_path = tmp_path / f"{name}-{port}.out"
            stderr_path = tmp_path / f"{name}-{port}.err"
            with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        HOST,
                        "-p",
                        str(port),
                        # As `make run` serves: the transport drops far-oversized frames.
                        "--websocket-max-message-size",
                        "65536",
                        "--websocket-max-frame-size",
                        "65536",
                        *(args or []),
                        "config.asgi:application",
                    ],
                    cwd=PROJECT_ROOT,
                    env=server_env,
                    stdout=stdout,
                    stderr=stderr,
                )
            server = Server(port, process, stdout_path, stderr_path, allow_errors, name)
            if _wait_until_ready(server):
                servers.append(server)
                return server
            _stop(server)
            if "Address already in use" not in server.output():
                break  # a real failure, not a lost race for the port
        pytest.fail(
            f"{name} exited with {server.process.returncode} before it was ready:\n"
            f"{server.output()}",
            pytrace=False,
        )

    yield start

    problems = []
    for server in servers:
        died = server.process.poll()
        _stop(server)
        output = server.output()
        if died is not None:
            problems.append(f"{server.name} exited with {died} during the test:\n{output}")
        elif not server.allow_errors and "Traceback (most recent call last)" in output:
            problems.append(f"{server.name} logged a traceback:\n{output}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(start_server: StartServer) -> Server:
    """One server process on this test's own database."""
    return start_server()
