#!/usr/bin/env python3
"""The chat benchmark: the project's daphne against a plain websockets ceiling, one run.

    python bench/run.py                 # standard run (a few minutes)
    python bench/run.py --quick         # smoke run (a few seconds per scenario)
    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/run.py

It starts the servers itself: the project (one daphne process, pinned to one core, on a
fresh migrated database of its own) and bench/ceiling.py (a plain ``websockets``
broadcast server with the same frames, no database), and drives both from this process,
pinned to the other core, through the public contract (API.md): it registers users,
creates and joins rooms over HTTP and connects authenticated WebSockets. See
bench/README.md for the scenarios and how to read the table.

Every loop here is bounded by a count or a deadline, and everything talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import http.client
import itertools
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import profile_summary  # noqa: E402
import wsclient  # noqa: E402

HOST = "127.0.0.1"
SECRET_KEY = "bench-secret-key-not-for-production"
PASSWORD = "bench-Correct-Horse-Battery-42"
CLK_TCK = os.sysconf("SC_CLK_TCK")
INF = float("inf")
# Variables the project's settings read: the server gets ours, never the shell's.
SETTINGS_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "REDIS_",
    "CHANNEL_LAYER_",
    "CHAT_",
    "THROTTLE_",
    "JWT_",
    "CORS_",
)
# Run order: idle first, so its RSS delta is not hidden by memory freed by earlier
# scenarios; history after its bulk insert; attack (not run by default) last, on a
# server restarted with the project's default limits.
# user-idle, users and sync (issue 14): the user socket /ws/ and POST /sync/.
SCENARIOS = (
    "idle",
    "user-idle",
    "fanout",
    "users",
    "burst",
    "latency",
    "sends",
    "history",
    "sync",
    "attack",
)
DEFAULT_SCENARIOS = SCENARIOS[:-1]
PROJECT_ONLY = ("user-idle", "users", "history", "sync", "attack")

# The project's per-socket and per-room limits, out of the way of every scenario but
# `attack` (whose server runs with the project's defaults). Older revisions ignore the
# variables they do not know.
UNLIMITED = {
    "CHAT_MESSAGE_RATE": "1000000000",
    "CHAT_MESSAGE_BURST": "1000000000",
    "CHAT_FRAME_RATE": "1000000000",
    "CHAT_FRAME_BURST": "1000000000",
    "CHAT_FLOOD_CLOSE_FRAMES": "1000000000",
    "CHAT_MAX_UNSENT_BYTES": "1073741824",
    "CHAT_MAX_SOCKETS_PER_USER": "1000000000",
    "CHAT_MAX_SOCKETS_PER_ADDRESS": "1000000000",
}

perf = time.perf_counter


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# Configuration ---------------------------------------------------------------------------


@dataclass
class Config:
    scenarios: list[str]
    backends: list[str]
    revs: list[str | None]
    ceiling: bool
    quick: bool
    repeat: int
    duration: float
    warmup: float
    drain: float
    fanout_clients: int
    fanout_senders: int
    window: int
    burst: int
    latency_rate: float
    latency_duration: float
    latency_warmup: float
    send_rooms: int
    send_window: int
    idle: int
    connect_concurrency: int
    history_size: int
    history_depth: float
    history_requests: int
    body_size: int
    attacks: list[str]
    attack_seconds: float
    attack_max_growth_mib: float
    bystander_interval: float
    server_cpu: int | None
    client_cpu: int | None
    client_uvloop: bool
    ceiling_uvloop: bool
    server_uvloop: bool
    servers: list[str]
    server_env: dict[str, str]
    db_url_query: str
    profile_dir: Path | None
    profile_gil: bool
    json_path: Path | None
    keep: bool


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        description="Chat benchmark: the project against a plain websockets ceiling.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (attack only when named)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "embedded", "external", "both"),
        default="auto",
        help="embedded: fresh SQLite + in-memory layer; external: DATABASE_URL (PostgreSQL) "
        "and/or REDIS_URL; auto: external when either variable is set",
    )
    p.add_argument(
        "--rev",
        action="append",
        default=[],
        metavar="GIT_REV",
        help="serve the project from this commit (git archive into the temp dir) instead of "
        "the working tree; repeat to compare commits in one table",
    )
    p.add_argument("--no-ceiling", action="store_true", help="skip the ceiling server")
    p.add_argument("--repeat", type=int, default=1, help="run each scenario N times")
    p.add_argument("--duration", type=float, help="measurement window, s (10; quick 3)")
    p.add_argument("--warmup", type=float, help="warm-up before measuring, s (2; quick 0.5)")
    p.add_argument("--drain", type=float, default=15.0, help="max wait for stragglers, s")
    p.add_argument("--fanout-clients", type=int, default=50)
    p.add_argument("--fanout-senders", type=int, default=5)
    p.add_argument("--window", type=int, default=4, help="unacked messages per fan-out sender")
    p.add_argument("--burst", type=int, help="messages in the burst (1000; quick 200)")
    p.add_argument("--latency-rate", type=float, default=25.0, help="msg/s")
    p.add_argument("--latency-duration", type=float, help="s (20; quick 4)")
    p.add_argument("--send-rooms", type=int, default=50, help="rooms; two senders each")
    p.add_argument("--send-window", type=int, default=1, help="unacked messages per sender")
    p.add_argument("--idle", type=int, help="idle sockets (2000; quick 200; full 10000)")
    p.add_argument("--connect-concurrency", type=int, default=100)
    p.add_argument("--history-size", type=int, help="messages (200000; quick 20000; full 1e6)")
    p.add_argument(
        "--history-depth",
        type=float,
        default=0.9,
        help="depth of the deep page: a fraction of the room (<= 1) or a message count",
    )
    p.add_argument("--history-requests", type=int, help="requests per page (200; quick 30)")
    p.add_argument("--body-size", type=int, default=100, help="message body characters")
    p.add_argument(
        "--attacks",
        default=",".join(ATTACKS),
        help=f"the attack scenario's sub-attacks, a subset of {','.join(ATTACKS)}",
    )
    p.add_argument("--attack-seconds", type=float, help="each attack's window, s (8; quick 4)")
    p.add_argument(
        "--attack-max-growth",
        type=float,
        default=2048,
        metavar="MIB",
        help="stop an attack early once the server's RSS grew by this much (protects the machine)",
    )
    p.add_argument(
        "--bystander-interval",
        type=float,
        default=0.25,
        help="s between the attack bystander's sends (the default send limit is 5/s)",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="core for the servers")
    p.add_argument("--client-cpu", type=int, default=1, help="core for this load generator")
    p.add_argument("--no-pin", action="store_true", help="do not pin to cores")
    p.add_argument("--no-client-uvloop", action="store_true", help="plain asyncio loop here")
    p.add_argument("--ceiling-uvloop", action="store_true", help="run the ceiling on uvloop")
    p.add_argument(
        "--server",
        default="daphne",
        help="experiment: daphne, uvicorn (--ws websockets-sansio --loop uvloop; pip install "
        "uvicorn), or both comma-separated for one column each",
    )
    p.add_argument(
        "--server-uvloop",
        action="store_true",
        help="experiment: start daphne with uvloop's event loop policy installed first",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the project server (repeatable)",
    )
    p.add_argument(
        "--db-url-query",
        default="",
        metavar="QUERY",
        help="appended to the bench's DATABASE_URL, e.g. conn_max_age=600 (an experiment knob)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles of the project server during fan-out and sends",
    )
    p.add_argument(
        "--profile-gil",
        action="store_true",
        help="profile only the thread holding the GIL (where Python CPU time goes)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="save the figures as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dir and logs")
    a = p.parse_args(argv)

    def pick(value: Any, standard: Any, quick: Any) -> Any:
        return value if value is not None else (quick if a.quick else standard)

    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    scenarios = [s for s in SCENARIOS if s in scenarios]
    attacks = [s.strip() for s in a.attacks.split(",") if s.strip()]
    if set(attacks) - set(ATTACKS):
        p.error(f"unknown attacks: {', '.join(sorted(set(attacks) - set(ATTACKS)))}")
    external = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    if a.backend == "auto":
        backends = ["external" if external else "embedded"]
    elif a.backend == "both":
        backends = ["embedded", "external"]
    else:
        backends = [a.backend]
    if "external" in backends and not external:
        p.error("--backend external/both needs DATABASE_URL and/or REDIS_URL")
    server_env = {}
    for item in a.server_env:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"--server-env wants NAME=VALUE, not {item!r}")
        server_env[name] = value
    for name in a.server.split(","):
        if name.strip() not in ("daphne", "uvicorn"):
            p.error(f"--server: daphne or uvicorn, not {name!r}")
    pin = not a.no_pin and (os.cpu_count() or 1) >= 2
    return Config(
        scenarios=scenarios,
        backends=backends,
        revs=list(a.rev) or [None],
        ceiling=not a.no_ceiling,
        quick=a.quick,
        repeat=max(1, a.repeat),
        duration=pick(a.duration, 10.0, 3.0),
        warmup=pick(a.warmup, 2.0, 0.5),
        drain=a.drain,
        fanout_clients=a.fanout_clients,
        fanout_senders=min(a.fanout_senders, a.fanout_clients),
        window=a.window,
        burst=pick(a.burst, 1000, 200),
        latency_rate=a.latency_rate,
        latency_duration=pick(a.latency_duration, 20.0, 4.0),
        latency_warmup=1.0 if not a.quick else 0.5,
        send_rooms=a.send_rooms,
        send_window=a.send_window,
        idle=pick(a.idle, 2000, 200),
        connect_concurrency=a.connect_concurrency,
        history_size=pick(a.history_size, 200_000, 20_000),
        history_depth=a.history_depth,
        history_requests=pick(a.history_requests, 200, 30),
        body_size=a.body_size,
        attacks=[s for s in ATTACKS if s in attacks],
        attack_seconds=pick(a.attack_seconds, 8.0, 4.0),
        attack_max_growth_mib=a.attack_max_growth,
        bystander_interval=a.bystander_interval,
        server_cpu=a.server_cpu if pin else None,
        client_cpu=a.client_cpu if pin else None,
        client_uvloop=not a.no_client_uvloop,
        ceiling_uvloop=a.ceiling_uvloop,
        server_uvloop=a.server_uvloop,
        servers=[name.strip() for name in a.server.split(",") if name.strip()],
        server_env=server_env,
        db_url_query=a.db_url_query.lstrip("?"),
        profile_dir=a.profile,
        profile_gil=a.profile_gil,
        json_path=a.json,
        keep=a.keep,
    )


# Processes -------------------------------------------------------------------------------


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> tuple[list[str], Callable[[], None] | None]:
    if cpu is None:
        return cmd, None
    if shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd], None
    return cmd, lambda: os.sched_setaffinity(0, {cpu})


def http_json(
    port: int, method: str, path: str, *, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:200]
    finally:
        conn.close()


def resolve_rev(rev: str) -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"unknown git revision {rev!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def export_rev(rev: str, dest: Path) -> None:
    """The project as committed at ``rev``, without touching the working tree or index."""
    archive = dest.with_suffix(".tar")
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), rev],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()


class Server:
    """A server process on 127.0.0.1, pinned to the server core."""

    kind = "server"
    column = "server"
    label = "server"
    redis = False
    postgres = False
    project_dir: Path = ROOT

    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        name = self.column.replace(" ", "_").replace("+", "_").replace("@", "_")
        self.log_path = workdir / f"{name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        pass

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.prepare()
        self.launch()

    def restart(self) -> None:
        """A fresh process on the same port and database: a clean baseline for RSS."""
        self.stop()
        self.launch()

    def launch(self) -> None:
        cmd, preexec = pinned(self.command(), self.cfg.server_cpu)
        logfile = open(self.log_path, "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            cmd,
            cwd=self.project_dir,
            env=self.env(),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
            start_new_session=True,
        )
        logfile.close()
        deadline = perf() + 60
        while perf() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.label} exited at start:\n{self.log_tail()}")
            if self.ready():
                log(f"{self.label}: pid {self.pid}, port {self.port}, log {self.log_path}")
                return
            time.sleep(0.2)
        raise BenchError(f"{self.label} not ready in 60 s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def cleanup(self) -> None:
        pass

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class CeilingServer(Server):
    kind = "ceiling"
    column = "ceiling"
    label = "ceiling (plain websockets)"

    def command(self) -> list[str]:
        cmd = [sys.executable, str(BENCH_DIR / "ceiling.py"), "--port", str(self.port)]
        return [*cmd, "--uvloop"] if self.cfg.ceiling_uvloop else cmd

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False


class ProjectServer(Server):
    """The project's daphne on a database and channel-layer prefix of its own."""

    kind = "project"

    def __init__(
        self, cfg: Config, workdir: Path, backend: str, rev: str | None, impl: str = "daphne"
    ) -> None:
        self.backend = backend
        self.impl = impl
        self.rev = resolve_rev(rev) if rev else None
        self.project_dir = workdir / f"src-{self.rev}" if self.rev else ROOT
        database_url = os.environ.get("DATABASE_URL", "") if backend == "external" else ""
        self.postgres = database_url.startswith(("postgres://", "postgresql://", "pgsql://"))
        self.admin_url = database_url if self.postgres else ""
        self.redis_url = os.environ.get("REDIS_URL", "") if backend == "external" else ""
        self.redis = bool(self.redis_url)
        tag = secrets.token_hex(5)
        self.db_name = f"bench_{tag}" if self.postgres else ""
        self.prefix = f"bench-{tag}"
        where = (
            ("PostgreSQL" if self.postgres else "SQLite")
            + ", "
            + ("Redis" if self.redis else "in-memory layer")
        )
        self.column = (
            "project "
            + ("pg" if self.postgres else "sqlite")
            + ("+redis" if self.redis else "+mem")
        )
        if impl != "daphne":
            self.column += f"+{impl}"
        if cfg.server_uvloop:
            self.column += "+uvloop"
        if self.rev:
            self.column += f"@{self.rev}"
        served = "" if impl == "daphne" else f", {impl}"
        self.label = f"project ({where}{served}{', commit ' + self.rev if self.rev else ''})"
        super().__init__(cfg, workdir)
        name = self.column.split()[1].replace("+", "_").replace("@", "_")
        self.sqlite_path = None if self.postgres else workdir / f"{name}.sqlite3"
        self.created_db = False
        self.default_limits = False  # True for `attack`: the project's own limits

    @property
    def database_url(self) -> str:
        if self.postgres:
            parts = urlsplit(self.admin_url)
            return urlunsplit(parts._replace(path=f"/{self.db_name}", query=""))
        return f"sqlite:///{self.sqlite_path}"

    @property
    def server_database_url(self) -> str:
        query = self.cfg.db_url_query
        return f"{self.database_url}?{query}" if query else self.database_url

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.base",
            DJANGO_SECRET_KEY=SECRET_KEY,
            DJANGO_DEBUG="false",
            DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
            DATABASE_URL=self.server_database_url,
            # The bench measures the message path, not the send limit or login throttles.
            **({} if self.default_limits else UNLIMITED),
            THROTTLE_REGISTER="1000000/minute",
            THROTTLE_LOGIN="1000000/minute",
            # Tokens must outlive the run (a 10,000-socket run takes minutes).
            JWT_ACCESS_MINUTES="1440",
            PYTHONUNBUFFERED="1",
        )
        if self.redis:
            env.update(REDIS_URL=self.redis_url, CHANNEL_LAYER_PREFIX=self.prefix)
        env.update(self.cfg.server_env)
        return env

    def prepare(self) -> None:
        if self.rev and not self.project_dir.exists():
            export_rev(self.rev, self.project_dir)
        if self.postgres:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
            self.created_db = True
        log(f"{self.label}: migrating {self.db_name or self.sqlite_path}")
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=self.project_dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
        if self.sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(self.sqlite_path)) as con:
                mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise BenchError(f"SQLite journal mode is {mode}, not WAL")

    def command(self) -> list[str]:
        if self.impl == "uvicorn":
            return [
                str(Path(sys.executable).parent / "uvicorn"),
                "config.asgi:application",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--ws",
                "websockets-sansio",
                "--ws-max-size",
                "65536",
                "--loop",
                "uvloop",
                "--lifespan",
                "off",
                "--no-access-log",
            ]
        args = [
            "-b",
            HOST,
            "-p",
            str(self.port),
            "--websocket-max-message-size",
            "65536",
            "--websocket-max-frame-size",
            "65536",
            "config.asgi:application",
        ]
        if self.cfg.server_uvloop:
            # daphne.server creates its loop with asyncio.new_event_loop() at import.
            boot = (
                "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); "
                "from daphne.cli import CommandLineInterface; CommandLineInterface.entrypoint()"
            )
            return [sys.executable, "-c", boot, *args]
        return [str(Path(sys.executable).parent / "daphne"), *args]

    def ready(self) -> bool:
        try:
            status, _ = http_json(self.port, "GET", "/healthz")
        except OSError:
            return False
        return status == 200

    def cleanup(self) -> None:
        if self.created_db:
            import psycopg
            from psycopg import sql

            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(self.db_name)
                        )
                    )
                log(f"dropped database {self.db_name}")
            except Exception as error:
                log(f"could not drop database {self.db_name}: {error}")
        if self.redis:
            try:
                import redis

                client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
                batch: list[bytes] = []
                deleted = 0
                for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        deleted += client.delete(*batch)
                        batch = []
                if batch:
                    deleted += client.delete(*batch)
                client.close()
                log(f"deleted {deleted} Redis keys under {self.prefix}")
            except Exception as error:
                log(f"could not clean Redis keys under {self.prefix}: {error}")


# Setup through the contract -------------------------------------------------------------


@dataclass
class User:
    id: int
    username: str
    token: str


@dataclass
class Plan:
    users: list[User]
    fanout_room: int
    send_rooms: list[tuple[int, list[int]]]  # room id, indexes of its two members
    history_room: int | None = None
    history_author: int | None = None
    history_seeded: int = 0
    # The users scenario's rooms: every one of the first USER_ROOM_MEMBERS users in each.
    user_rooms: list[int] | None = None
    setup_seconds: float = 0.0
    attack: AttackPlan | None = None


def http_json_retry(port: int, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """``http_json`` for setup, retried on a 5xx or a refused connection.

    PostgreSQL's ``max_connections`` is shared with whatever else runs on the machine,
    and each HTTP request context of the server can open a connection of its own.
    """
    for attempt in range(4):
        try:
            status, data = http_json(port, method, path, **kwargs)
        except OSError:
            if attempt == 3:
                raise
        else:
            if status < 500 or attempt == 3:
                return status, data
        time.sleep(2**attempt)
    raise AssertionError("unreachable")


def _check(status: int, data: Any, expected: int, what: str) -> Any:
    if status != expected:
        raise BenchError(f"{what}: HTTP {status}, expected {expected}: {data}")
    return data


def register_user(port: int, username: str, display_name: str) -> User:
    status, data = http_json_retry(
        port,
        "POST",
        "/api/v1/auth/register/",
        body={"username": username, "password": PASSWORD, "display_name": display_name},
    )
    data = _check(status, data, 201, "register")
    return User(id=data["user"]["id"], username=data["user"]["username"], token=data["access"])


def create_room_as(port: int, owner: User, name: str) -> int:
    status, data = http_json_retry(
        port, "POST", "/api/v1/rooms/", body={"name": name}, token=owner.token
    )
    return int(_check(status, data, 201, "create room")["id"])


def join_room_as(port: int, user: User, room_id: int) -> None:
    status, data = http_json_retry(port, "POST", f"/api/v1/rooms/{room_id}/join/", token=user.token)
    _check(status, data, 200, "join room")


def setup_project(server: ProjectServer, cfg: Config) -> Plan:
    """Users, rooms and memberships through the HTTP API, as a client would."""
    started = perf()
    if not set(cfg.scenarios) - {"attack"}:
        return Plan([], 0, [])  # the attack registers users of its own
    run = secrets.token_hex(3)
    n_users = max(cfg.fanout_clients, cfg.send_rooms, 2)
    port = server.port

    def register(i: int) -> User:
        return register_user(port, f"b{run}_{i}", f"Bench {i}")

    def create_room(owner: User, name: str) -> int:
        return create_room_as(port, owner, name)

    def join(user: User, room_id: int) -> None:
        join_room_as(port, user, room_id)

    log(f"{server.label}: registering {n_users} users and creating rooms")
    with ThreadPoolExecutor(4) as pool:
        users = list(pool.map(register, range(n_users)))
        fanout_room = create_room(users[0], f"bench-fanout-{run}")
        list(pool.map(lambda u: join(u, fanout_room), users[1 : cfg.fanout_clients]))
        send_rooms = []
        for r in range(cfg.send_rooms):
            owner, other = r % n_users, (r + 1) % n_users
            send_rooms.append((create_room(users[owner], f"bench-send-{run}-{r}"), [owner, other]))
        list(pool.map(lambda rm: join(users[rm[1][1]], rm[0]), send_rooms))
        history_room = None
        if "history" in cfg.scenarios:
            history_room = create_room(users[0], f"bench-history-{run}")
    plan = Plan(users, fanout_room, send_rooms, history_room, users[0].id)
    plan.setup_seconds = perf() - started
    log(f"{server.label}: setup took {plan.setup_seconds:.1f} s")
    return plan


def setup_ceiling(cfg: Config) -> Plan:
    """The ceiling checks nothing: synthetic ids, and tokens that only carry a user id."""
    n_users = max(cfg.fanout_clients, cfg.send_rooms, 2)

    def token(user_id: int) -> str:
        payload = base64.urlsafe_b64encode(json.dumps({"user_id": user_id}).encode())
        return f"x.{payload.decode().rstrip('=')}.x"

    users = [User(id=i + 1, username=f"user{i + 1}", token=token(i + 1)) for i in range(n_users)]
    send_rooms = [(2 + r, [r % n_users, (r + 1) % n_users]) for r in range(cfg.send_rooms)]
    return Plan(users, 1, send_rooms)


# Clients ---------------------------------------------------------------------------------


class Stats:
    """What one scenario run saw; shared by all its peers."""

    _tags = 0

    def __init__(self) -> None:
        Stats._tags += 1
        # client_id is unique per author and room for the whole run: a repeat would be
        # answered as a duplicate and never broadcast.
        self.tag = f"{secrets.token_hex(2)}{Stats._tags}x"
        self.deliveries = 0
        self.acks = 0
        self.last_delivery = 0.0
        self.errors: collections.Counter[str] = collections.Counter()
        self.acked: dict[int, set[int]] = collections.defaultdict(set)
        self.sent_at: dict[str, float] = {}
        self.latency_from: float | None = None  # record latencies of sends from then on
        self.latencies: list[float] = []
        self.running = False


class Peer:
    """One authenticated socket of one user in one room."""

    __slots__ = (
        "hello",
        "idx",
        "outstanding",
        "prefix",
        "room",
        "sent",
        "seqs",
        "stats",
        "user",
        "window",
        "ws",
    )

    def __init__(self, idx: int, user: User, room: int, stats: Stats, body: str) -> None:
        self.idx = idx
        self.user = user
        self.room = room
        self.stats = stats
        self.hello: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.seqs: list[int] = []
        self.outstanding = 0
        self.window = 0
        self.sent = 0
        self.ws: wsclient.WSClient | None = None
        self.prefix = (
            '{"type":"message.send","body":"' + body + '","client_id":"' + stats.tag + f"{idx}-"
        )

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("type")
        stats = self.stats
        if kind == "message.new":
            message = frame["message"]
            self.seqs.append(message["seq"])
            stats.deliveries += 1
            now = perf()
            stats.last_delivery = now
            since = stats.latency_from
            if since is not None:
                sent = stats.sent_at.get(message.get("client_id"))
                if sent is not None and sent >= since:
                    stats.latencies.append(now - sent)
        elif kind == "message.ack":
            stats.acks += 1
            stats.acked[self.room].add(frame["message"]["seq"])
            self._answered()
        elif kind == "hello":
            if not self.hello.done():
                self.hello.set_result(frame.get("last_seq", 0))
        elif kind == "error":
            stats.errors[str(frame.get("code"))] += 1
            if frame.get("client_id") is not None:
                self._answered()

    def _answered(self) -> None:
        self.outstanding -= 1
        if self.stats.running and self.outstanding < self.window:
            self.send_message()

    def send_message(self) -> None:
        assert self.ws is not None
        self.sent += 1
        text = f'{self.prefix}{self.sent}"}}'
        self.stats.sent_at[f"{self.stats.tag}{self.idx}-{self.sent}"] = perf()
        self.outstanding += 1
        self.ws.send_text(text)


def make_body(size: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz "
    return "".join(alphabet[i % len(alphabet)] for i in range(max(1, size))).strip() or "x"


async def open_peers(
    server: Server,
    specs: list[tuple[User, int]],
    stats: Stats,
    cfg: Config,
    *,
    concurrency: int,
    within: float = 60.0,
    peer_class: type[Peer] | None = None,
    rcvbuf: int | None = None,
    path_of: Callable[[int], str] | None = None,
) -> tuple[list[Peer], collections.Counter[str]]:
    """Connect every (user, room) and wait for each ``hello``; failures by reason.
    ``path_of`` gives the socket's path for a room (a room socket's by default)."""
    socket_path = path_of or (lambda room: f"/ws/rooms/{room}/")
    make_peer = peer_class or Peer
    body = make_body(cfg.body_size)
    semaphore = asyncio.Semaphore(concurrency)
    failures: collections.Counter[str] = collections.Counter()
    peers: list[Peer | None] = [None] * len(specs)

    async def one(i: int, user: User, room: int) -> None:
        peer = make_peer(i, user, room, stats, body)
        async with semaphore:
            try:
                peer.ws = await wsclient.connect(
                    HOST,
                    server.port,
                    socket_path(room),
                    token=user.token,
                    on_text=peer.on_text,
                    within=within,
                    rcvbuf=rcvbuf,
                )
            except (TimeoutError, OSError, wsclient.HandshakeFailed) as error:
                failures[type(error).__name__] += 1
                return
            done, _ = await asyncio.wait(
                {peer.hello, peer.ws.closed}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
            if peer.hello in done:
                peers[i] = peer
            else:
                failures[f"close {peer.ws.close_code}" if done else "no hello"] += 1
                peer.ws.abort()

    await asyncio.gather(*(one(i, user, room) for i, (user, room) in enumerate(specs)))
    return [p for p in peers if p is not None], failures


async def close_peers(peers: list[Peer], within: float = 15.0) -> None:
    clients = [p.ws for p in peers if p.ws is not None]
    for client in clients:
        client.close()
    if clients:
        await asyncio.wait([c.closed for c in clients], timeout=within)
    for client in clients:
        if not client.closed.done():
            client.abort()
    await asyncio.sleep(0.1)


async def wait_until(predicate: Callable[[], bool], within: float) -> bool:
    deadline = perf() + within
    while not predicate():
        if perf() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def settle(server: Server, max_wait: float = 30.0, idle_share: float = 0.05) -> bool:
    """Wait until the server is (nearly) idle: the previous scenario's tail is done."""
    deadline = perf() + max_wait
    before, t = cpu_seconds(server.pid), perf()
    while perf() < deadline:
        await asyncio.sleep(0.5)
        now_cpu, now = cpu_seconds(server.pid), perf()
        if (now_cpu - before) / (now - t) < idle_share:
            return True
        before, t = now_cpu, now
    log(f"{server.label}: still busy after {max_wait:.0f} s; measuring anyway")
    return False


def delivery_check(peers: list[Peer], stats: Stats) -> dict[str, int]:
    """Every delivery matched by seq against the acknowledged messages of its room."""
    lost = duplicates = out_of_order = unacked = 0
    for peer in peers:
        expected = stats.acked[peer.room]
        got = set(peer.seqs)
        lost += len(expected - got)
        duplicates += len(peer.seqs) - len(got)
        unacked += len(got - expected)
        highest = -1
        for seq in peer.seqs:
            if seq <= highest:
                out_of_order += 1
            highest = max(highest, seq)
    return {
        "lost": lost,
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "delivered_unacked": unacked,
    }


async def drain(peers: list[Peer], senders: list[Peer], stats: Stats, cfg: Config) -> bool:
    acked = await wait_until(lambda: all(s.outstanding <= 0 for s in senders), cfg.drain)
    delivered = await wait_until(
        lambda: all(len(p.seqs) >= len(stats.acked[p.room]) for p in peers), cfg.drain
    )
    return acked and delivered


def core_busy_seconds(core: int | None) -> float:
    """CPU time a core spent busy (anything but idle and iowait), from /proc/stat."""
    if core is None:
        return 0.0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                values = [int(v) for v in line.split()[1:]]
                return (sum(values[:8]) - values[3] - values[4]) / CLK_TCK
    return 0.0


@dataclass
class Snapshot:
    t: float
    server_cpu: float
    server_sys: float
    client_cpu: float
    server_core_busy: float
    deliveries: int
    acks: int

    @classmethod
    def take(cls, server: Server, stats: Stats) -> Snapshot:
        user, system = cpu_times(server.pid)
        return cls(
            perf(),
            user + system,
            system,
            time.process_time(),
            core_busy_seconds(server.cfg.server_cpu),
            stats.deliveries,
            stats.acks,
        )

    def system_share(self, later: Snapshot) -> float:
        """Percent of the server's CPU time spent in the kernel (system calls)."""
        total = later.server_cpu - self.server_cpu
        return 100 * (later.server_sys - self.server_sys) / total if total > 0 else 0.0

    def others_on_server_core(self, later: Snapshot) -> float:
        """Percent of the server's core used by other processes (the machine's noise)."""
        busy = later.server_core_busy - self.server_core_busy
        ours = later.server_cpu - self.server_cpu
        return max(0.0, 100 * (busy - ours) / (later.t - self.t))


class Profiler:
    """py-spy on the project server for one measurement window (optional)."""

    def __init__(self, cfg: Config, server: Server, name: str) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        if cfg.profile_dir is None or server.kind != "project":
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            log("py-spy not found: pip install py-spy (profile skipped)")
            return
        cfg.profile_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%H%M%S")
        kind = "-gil" if cfg.profile_gil else ""
        self.path = cfg.profile_dir / f"{name}{kind}-{server.column.split()[1]}-{stamp}.txt"
        cmd = [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(max(1, int(cfg.duration))),
            "--rate",
            "200",
            "--threads",
            *(["--gil"] if cfg.profile_gil else []),
            "--format",
            "raw",
            "-o",
            str(self.path),
        ]
        # On the load generator's core, so the server's core is left to the server.
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def finish(self) -> str | None:
        if self.process is None or self.path is None:
            return None
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            return None
        if not self.path.exists():
            log(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
            return None
        summary = profile_summary.summarise(self.path, top=30)
        self.path.with_suffix(".summary.txt").write_text(summary + "\n")
        log(f"profile: {self.path}\n{summary}")
        return str(self.path)


# Scenarios -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


async def scenario_idle(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(cfg.idle, soft - 200)
    if n < cfg.idle:
        log(f"idle: ulimit -n is {soft}: {n} sockets instead of {cfg.idle}")
    rooms = plan.send_rooms
    specs = []
    for i in range(n):
        room, members = rooms[i % len(rooms)]
        specs.append((plan.users[members[(i // len(rooms)) % len(members)]], room))
    stats = Stats()
    # A fresh process, warmed up by a few sockets (imports, caches, the layer's first
    # groups), so that memory freed by earlier work cannot absorb the new sockets.
    await settle(server)  # the last sockets' disconnects (group_discard) are done
    await asyncio.to_thread(server.restart)
    warm, _ = await open_peers(server, specs[:50], Stats(), cfg, concurrency=50)
    await close_peers(warm)
    await settle(server)
    rss_before = rss_kib(server.pid)
    cpu_before = cpu_seconds(server.pid)
    started = perf()
    profiler = Profiler(cfg, server, "connect")  # the first --duration seconds of it
    peers, failures = await open_peers(
        server, specs, stats, cfg, concurrency=cfg.connect_concurrency, within=120
    )
    elapsed = perf() - started
    cpu_connect = cpu_seconds(server.pid) - cpu_before
    profiler.finish()
    await asyncio.sleep(1.0)
    await settle(server)
    rss_after = rss_kib(server.pid)
    await close_peers(peers, within=30)
    connected = len(peers)
    return {
        "idle.sockets": connected,
        "idle.failed": sum(failures.values()),
        "idle.connect_per_s": connected / elapsed if elapsed else 0.0,
        "idle.server_ms_per_connect": 1000 * cpu_connect / connected if connected else 0.0,
        "idle.rss_kib_per_socket": (rss_after - rss_before) / connected if connected else 0.0,
        "idle.rss_before_mib": rss_before / 1024,
        "idle.rss_after_mib": rss_after / 1024,
        "idle.failures": dict(failures),
    }


async def _all_peers(
    server: Server,
    specs: list[Any],
    stats: Stats,
    cfg: Config,
    name: str,
    *,
    concurrency: int,
    **open_kwargs: Any,
) -> list[Peer]:
    """Opens a socket per spec; any that fails to open fails the scenario."""
    peers, failures = await open_peers(
        server, specs, stats, cfg, concurrency=concurrency, **open_kwargs
    )
    if failures:
        await close_peers(peers)
        raise BenchError(f"{name}: {sum(failures.values())} sockets failed: {dict(failures)}")
    return peers


async def _room_peers(
    server: Server, plan: Plan, cfg: Config, stats: Stats, name: str
) -> list[Peer]:
    specs = [(u, plan.fanout_room) for u in plan.users[: cfg.fanout_clients]]
    return await _all_peers(server, specs, stats, cfg, name, concurrency=50)


async def _closed_loop(
    server: Server,
    cfg: Config,
    stats: Stats,
    name: str,
    peers: list[Peer],
    senders: list[Peer],
    window: int,
) -> tuple[Snapshot, Snapshot, bool, str | None]:
    """Senders keep ``window`` messages without an ack in flight: warm up, measure for
    ``cfg.duration``, stop and drain. Closes the peers; returns the window's two
    snapshots, whether the drain completed, and the profile's path (``--profile``)."""
    try:
        await settle(server)
        for sender in senders:
            sender.window = window
        stats.running = True
        for sender in senders:
            for _ in range(window):
                sender.send_message()
        await asyncio.sleep(cfg.warmup)
        a = Snapshot.take(server, stats)
        profiler = Profiler(cfg, server, name)
        await asyncio.sleep(cfg.duration)
        b = Snapshot.take(server, stats)
        stats.running = False
        complete = await drain(peers, senders, stats, cfg)
        profile = profiler.finish()
    finally:
        await close_peers(peers)
    return a, b, complete, profile


def _cpu_figures(name: str, a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """Where the CPU went during a measured window, as percentages of it."""
    span = b.t - a.t
    return {
        f"{name}.server_cpu_pct": 100 * (b.server_cpu - a.server_cpu) / span,
        f"{name}.server_system_pct": a.system_share(b),
        f"{name}.others_on_server_core_pct": a.others_on_server_core(b),
        f"{name}.client_cpu_pct": 100 * (b.client_cpu - a.client_cpu) / span,
    }


async def scenario_fanout(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    stats = Stats()
    peers = await _room_peers(server, plan, cfg, stats, "fanout")
    senders = peers[: cfg.fanout_senders]
    a, b, complete, profile = await _closed_loop(
        server, cfg, stats, "fanout", peers, senders, cfg.window
    )
    span = b.t - a.t
    deliveries = b.deliveries - a.deliveries
    result: dict[str, Any] = {
        "fanout.deliveries_per_s": deliveries / span,
        "fanout.messages_per_s": (b.acks - a.acks) / span,
        "fanout.server_us_per_delivery": 1e6 * (b.server_cpu - a.server_cpu) / max(1, deliveries),
        "fanout.per_cpu_second": deliveries / max(1e-9, b.server_cpu - a.server_cpu),
        **_cpu_figures("fanout", a, b),
        "fanout.complete": complete,
        "fanout.errors": sum(stats.errors.values()),
        "fanout.messages": sum(len(s) for s in stats.acked.values()),
    }
    result.update({f"fanout.{k}": v for k, v in delivery_check(peers, stats).items()})
    if profile:
        result["fanout.profile"] = profile
    return result


async def scenario_burst(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    stats = Stats()
    peers = await _room_peers(server, plan, cfg, stats, "burst")
    sender = peers[0]
    try:
        await settle(server)
        started = perf()
        for _ in range(cfg.burst):
            sender.send_message()
        complete = await wait_until(lambda: sender.outstanding <= 0, cfg.drain + cfg.burst / 100)
        complete = await drain(peers, [sender], stats, cfg) and complete
    finally:
        await close_peers(peers)
    span = max(1e-9, stats.last_delivery - started)
    result: dict[str, Any] = {
        "burst.seconds": span,
        "burst.deliveries_per_s": stats.deliveries / span,
        "burst.unacked": sender.outstanding,
        "burst.errors": sum(stats.errors.values()),
        "burst.complete": complete,
    }
    result.update({f"burst.{k}": v for k, v in delivery_check(peers, stats).items()})
    return result


async def scenario_latency(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    stats = Stats()
    peers = await _room_peers(server, plan, cfg, stats, "latency")
    warm = int(cfg.latency_rate * cfg.latency_warmup)
    count = warm + int(cfg.latency_rate * cfg.latency_duration)
    try:
        await settle(server)
        a = Snapshot.take(server, stats)
        started = perf()
        for i in range(count):
            delay = started + i / cfg.latency_rate - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == warm:
                stats.latency_from = perf()
            peers[i % len(peers)].send_message()
        b = Snapshot.take(server, stats)
        complete = await drain(peers, peers, stats, cfg)
    finally:
        await close_peers(peers)
    ms = [1000 * v for v in stats.latencies]
    span = b.t - a.t
    result: dict[str, Any] = {
        "latency.p50_ms": percentile(ms, 0.50),
        "latency.p90_ms": percentile(ms, 0.90),
        "latency.p99_ms": percentile(ms, 0.99),
        "latency.max_ms": max(ms) if ms else float("nan"),
        "latency.samples": len(ms),
        "latency.server_cpu_pct": 100 * (b.server_cpu - a.server_cpu) / span,
        "latency.achieved_rate": (count - 0) / span,
        "latency.errors": sum(stats.errors.values()),
        "latency.complete": complete,
    }
    result.update({f"latency.{k}": v for k, v in delivery_check(peers, stats).items()})
    return result


async def scenario_sends(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    stats = Stats()
    specs = [(plan.users[m], room) for room, members in plan.send_rooms for m in members]
    peers = await _all_peers(server, specs, stats, cfg, "sends", concurrency=100)
    a, b, complete, _ = await _closed_loop(
        server, cfg, stats, "sends", peers, peers, cfg.send_window
    )
    span = b.t - a.t
    acks = b.acks - a.acks
    result: dict[str, Any] = {
        "sends.acked_per_s": acks / span,
        "sends.deliveries_per_s": (b.deliveries - a.deliveries) / span,
        "sends.server_us_per_ack": 1e6 * (b.server_cpu - a.server_cpu) / max(1, acks),
        **_cpu_figures("sends", a, b),
        "sends.errors": sum(stats.errors.values()),
        "sends.complete": complete,
    }
    result.update({f"sends.{k}": v for k, v in delivery_check(peers, stats).items()})
    return result


def seed_history(server: ProjectServer, room_id: int, author_id: int, size: int) -> None:
    """A room of ``size`` messages, written straight into the bench's own database."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    last = base + dt.timedelta(milliseconds=size)
    if server.postgres:
        import psycopg

        with psycopg.connect(server.database_url, autocommit=True) as con:
            con.execute(
                "INSERT INTO messaging_message (room_id, author_id, seq, rev, body,"
                " client_id, created_at, edited_at, is_deleted)"
                " SELECT %s, %s, i, i, 'seeded message ' || i, '',"
                " %s + i * interval '1 millisecond', NULL, false"
                " FROM generate_series(1, %s) AS i",
                (room_id, author_id, base, size),
            )
            con.execute(
                "UPDATE rooms_room SET last_seq = %s, last_rev = %s, last_activity_at = %s"
                " WHERE id = %s",
                (size, size, last, room_id),
            )
            # What autovacuum would do soon after such an insert, done now for a fair plan.
            con.execute("ANALYZE messaging_message")
        return
    assert server.sqlite_path is not None
    with contextlib.closing(sqlite3.connect(server.sqlite_path, timeout=60)) as con:
        with con:
            con.execute(
                "INSERT INTO messaging_message (room_id, author_id, seq, rev, body,"
                " client_id, created_at, edited_at, is_deleted)"
                " WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " SELECT ?, ?, i, i, 'seeded message ' || i, '',"
                " strftime('%Y-%m-%d %H:%M:%f', ? + i / 1000.0, 'unixepoch'), NULL, 0 FROM n",
                (size, room_id, author_id, base.timestamp()),
            )
            con.execute(
                "UPDATE rooms_room SET last_seq = ?, last_rev = ?, last_activity_at = ?"
                " WHERE id = ?",
                (size, size, last.strftime("%Y-%m-%d %H:%M:%S.%f"), room_id),
            )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def measure_history(server: ProjectServer, plan: Plan, cfg: Config) -> dict[str, Any]:
    size = plan.history_seeded
    depth = int(size * cfg.history_depth) if cfg.history_depth <= 1 else int(cfg.history_depth)
    depth = max(0, min(depth, size - 1))
    before = size - depth + 1  # the page whose newest message is `depth` behind the newest
    token = plan.users[0].token
    room = plan.history_room
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    first_path = f"/api/v1/rooms/{room}/messages/"
    deep_path = f"/api/v1/rooms/{room}/messages/?before={before}"

    def get(path: str) -> tuple[float, Any]:
        started = perf()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        elapsed = perf() - started
        if response.status != 200:
            raise BenchError(f"history GET {path}: HTTP {response.status}: {raw[:300]!r}")
        return elapsed, raw

    try:
        for path, newest in ((first_path, size), (deep_path, before - 1)):
            _, raw = get(path)
            results = json.loads(raw)["results"]
            if len(results) != 50 or results[0]["seq"] != newest:
                seqs = [m["seq"] for m in results[:3]]
                raise BenchError(f"history {path}: {len(results)} results from {seqs}")
        for _ in range(5):
            get(first_path)
            get(deep_path)
        first, deep = [], []
        for _ in range(cfg.history_requests):
            first.append(1000 * get(first_path)[0])
            deep.append(1000 * get(deep_path)[0])
    finally:
        conn.close()
    p50_first, p50_deep = percentile(first, 0.5), percentile(deep, 0.5)
    return {
        "history.size": size,
        "history.depth": depth,
        "history.first_p50_ms": p50_first,
        "history.first_p90_ms": percentile(first, 0.9),
        "history.deep_p50_ms": p50_deep,
        "history.deep_p90_ms": percentile(deep, 0.9),
        "history.deep_vs_first": p50_deep / p50_first if p50_first else float("nan"),
    }


async def scenario_history(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    if not isinstance(server, ProjectServer) or plan.history_room is None:
        return {}
    if not plan.history_seeded:
        log(f"{server.label}: seeding {cfg.history_size:,} messages")
        started = perf()
        assert plan.history_author is not None
        await asyncio.to_thread(
            seed_history, server, plan.history_room, plan.history_author, cfg.history_size
        )
        plan.history_seeded = cfg.history_size
        log(f"{server.label}: seeded in {perf() - started:.1f} s")
    await settle(server)
    profiler = Profiler(cfg, server, "history")
    figures = await asyncio.to_thread(measure_history, server, plan, cfg)
    profiler.finish()
    return figures


# The user socket and sync (issue 14) ------------------------------------------------------

USER_ROOMS = 10  # rooms of each user in the users and user-idle scenarios
USER_ROOM_MEMBERS = 50  # users in each of those rooms
SYNC_ROOMS = 200  # the sync scenario's user is in this many rooms...
SYNC_CHANGES = 20  # ...with this many changes each
SYNC_REQUESTS = 30  # timed requests (after 3 to warm up)


def user_socket_path(room: int) -> str:
    return "/ws/"


def supports_user_socket(server: Server) -> bool:
    """Whether the served revision has ``/ws/`` and ``/sync/`` (older ones answer 404)."""
    status, _ = http_json(server.port, "POST", "/api/v1/sync/", body={})
    return status != 404


class UserPeer(Peer):
    """One user socket (``/ws/``) of a user in several rooms; sends into ``send_room``."""

    __slots__ = ("room_seqs", "send_room")

    def __init__(self, idx: int, user: User, room: int, stats: Stats, body: str) -> None:
        super().__init__(idx, user, room, stats, body)
        self.room_seqs: dict[int, list[int]] = collections.defaultdict(list)
        self.send_room = 0

    def sends_into(self, room: int) -> None:
        self.send_room = room
        self.prefix = self.prefix.replace(
            '{"type":"message.send",', f'{{"type":"message.send","room":{room},', 1
        )

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("type")
        stats = self.stats
        if kind == "message.new":
            self.room_seqs[frame["room"]].append(frame["message"]["seq"])
            stats.deliveries += 1
            stats.last_delivery = perf()
        elif kind == "message.ack":
            stats.acks += 1
            stats.acked[frame["message"]["room"]].add(frame["message"]["seq"])
            self._answered()
        elif kind == "hello":
            if not self.hello.done():
                self.hello.set_result(0)
        elif kind == "error":
            stats.errors[str(frame.get("code"))] += 1
            if frame.get("client_id") is not None:
                self._answered()


def user_delivery_check(peers: list[UserPeer], rooms: list[int], stats: Stats) -> dict[str, int]:
    """As ``delivery_check``, for every room of every user socket."""
    lost = duplicates = out_of_order = unacked = 0
    for peer in peers:
        for room in rooms:
            seqs = peer.room_seqs.get(room, [])
            expected, got = stats.acked[room], set(seqs)
            lost += len(expected - got)
            duplicates += len(seqs) - len(got)
            unacked += len(got - expected)
            out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
    return {
        "lost": lost,
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "delivered_unacked": unacked,
    }


def ensure_user_rooms(server: Server, plan: Plan) -> list[int]:
    """USER_ROOMS rooms, each with the first USER_ROOM_MEMBERS users as members."""
    if plan.user_rooms is None:
        members = plan.users[:USER_ROOM_MEMBERS]
        run = secrets.token_hex(3)
        log(f"{server.label}: {USER_ROOMS} rooms of {len(members)} members each")
        with ThreadPoolExecutor(4) as pool:
            rooms = list(
                pool.map(
                    lambda r: create_room_as(
                        server.port, members[r % len(members)], f"bench-user-{run}-{r}"
                    ),
                    range(USER_ROOMS),
                )
            )
            joins = [
                (user, room)
                for r, room in enumerate(rooms)
                for i, user in enumerate(members)
                if i != r % len(members)
            ]
            list(pool.map(lambda j: join_room_as(server.port, j[0], j[1]), joins))
        plan.user_rooms = rooms
    return plan.user_rooms


async def scenario_users(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    """50 users, each in the same 10 rooms on one user socket; a sender in every room.
    Each message reaches 50 sockets, as in ``fanout`` (one room of 50 room sockets), so
    the two CPU-per-delivery figures compare directly."""
    if not supports_user_socket(server):
        log(f"{server.label}: users: no /ws/ in this revision, skipped")
        return {}
    rooms = await asyncio.to_thread(ensure_user_rooms, server, plan)
    members = plan.users[:USER_ROOM_MEMBERS]
    stats = Stats()
    peers = await _all_peers(
        server,
        [(user, 0) for user in members],
        stats,
        cfg,
        "users",
        concurrency=50,
        peer_class=UserPeer,
        path_of=user_socket_path,
    )
    user_peers = [p for p in peers if isinstance(p, UserPeer)]
    senders: list[Peer] = []
    for r, room in enumerate(rooms):
        sender = user_peers[r % len(user_peers)]
        sender.sends_into(room)
        senders.append(sender)
    try:
        # The loop drains the senders' acks; the deliveries are waited for here.
        a, b, _, profile = await _closed_loop(server, cfg, stats, "users", [], senders, cfg.window)
        complete = await wait_until(
            lambda: all(
                len(p.room_seqs.get(room, ())) >= len(stats.acked[room])
                for p in user_peers
                for room in rooms
            ),
            cfg.drain,
        )
    finally:
        await close_peers(peers)
    span = b.t - a.t
    deliveries = b.deliveries - a.deliveries
    result: dict[str, Any] = {
        "users.deliveries_per_s": deliveries / span,
        "users.messages_per_s": (b.acks - a.acks) / span,
        "users.server_us_per_delivery": 1e6 * (b.server_cpu - a.server_cpu) / max(1, deliveries),
        **_cpu_figures("users", a, b),
        "users.complete": complete,
        "users.errors": sum(stats.errors.values()),
        "users.messages": sum(len(s) for s in stats.acked.values()),
    }
    result.update(
        {f"users.{k}": v for k, v in user_delivery_check(user_peers, rooms, stats).items()}
    )
    if profile:
        result["users.profile"] = profile
    return result


async def _idle_rss_per_socket(
    server: Server,
    specs: list[tuple[User, int]],
    cfg: Config,
    **open_kwargs: Any,
) -> tuple[float, int]:
    """Server RSS per socket, KiB, for ``specs`` opened on a fresh, warmed-up process."""
    await settle(server)
    await asyncio.to_thread(server.restart)
    warm, _ = await open_peers(server, specs[:50], Stats(), cfg, concurrency=50, **open_kwargs)
    await close_peers(warm)
    await settle(server)
    before = rss_kib(server.pid)
    peers, failures = await open_peers(
        server, specs, Stats(), cfg, concurrency=cfg.connect_concurrency, within=120, **open_kwargs
    )
    await asyncio.sleep(1.0)
    await settle(server)
    after = rss_kib(server.pid)
    await close_peers(peers, within=30)
    if failures:
        raise BenchError(f"user-idle: {sum(failures.values())} sockets failed: {dict(failures)}")
    return (after - before) / max(1, len(peers)), len(peers)


async def scenario_user_idle(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    """Idle memory of user sockets whose user is in 10 rooms, against room sockets,
    in the same run on the same kind of fresh process."""
    if not supports_user_socket(server):
        log(f"{server.label}: user-idle: no /ws/ in this revision, skipped")
        return {}
    rooms = await asyncio.to_thread(ensure_user_rooms, server, plan)
    members = plan.users[:USER_ROOM_MEMBERS]
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(cfg.idle, soft - 200)
    room_specs = [
        (members[i % len(members)], rooms[(i // len(members)) % len(rooms)]) for i in range(n)
    ]
    user_specs = [(members[i % len(members)], 0) for i in range(n)]
    room_kib, room_n = await _idle_rss_per_socket(server, room_specs, cfg)
    user_kib, user_n = await _idle_rss_per_socket(
        server, user_specs, cfg, peer_class=UserPeer, path_of=user_socket_path
    )
    await asyncio.to_thread(server.restart)  # what follows starts from a clean process
    return {
        "user_idle.sockets": user_n,
        "user_idle.room_socket_kib": room_kib,
        "user_idle.user_socket_kib": user_kib,
        "user_idle.user_vs_room_sockets": user_kib / room_kib if room_kib > 0 else 0.0,
        "user_idle.room_sockets": room_n,
    }


def seed_sync_rooms(
    server: ProjectServer, room_ids: list[int], author_id: int, changes: int
) -> None:
    """``changes`` messages in each room (revisions 1..changes), straight into the
    database, as ``seed_history`` does for one room."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        (room, author_id, i, i, f"sync message {i}", "", base + dt.timedelta(seconds=i))
        for room in room_ids
        for i in range(1, changes + 1)
    ]
    if server.postgres:
        import psycopg

        with psycopg.connect(server.database_url, autocommit=True) as con:
            with con.cursor() as cur:
                cur.executemany(
                    "INSERT INTO messaging_message (room_id, author_id, seq, rev, body,"
                    " client_id, created_at, edited_at, is_deleted)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, false)",
                    rows,
                )
                cur.execute(
                    "UPDATE rooms_room SET last_seq = %s, last_rev = %s WHERE id = ANY(%s)",
                    (changes, changes, room_ids),
                )
            con.execute("ANALYZE messaging_message")
        return
    assert server.sqlite_path is not None
    with contextlib.closing(sqlite3.connect(server.sqlite_path, timeout=60)) as con:
        with con:
            con.executemany(
                "INSERT INTO messaging_message (room_id, author_id, seq, rev, body,"
                " client_id, created_at, edited_at, is_deleted)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)",
                [(*row[:6], row[6].strftime("%Y-%m-%d %H:%M:%S.%f")) for row in rows],
            )
            con.executemany(
                "UPDATE rooms_room SET last_seq = ?, last_rev = ? WHERE id = ?",
                [(changes, changes, room) for room in room_ids],
            )
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def scenario_sync(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    """``POST /sync/`` of a user in 200 rooms with 20 changes each, holding revision 0
    of every room: the whole answer (4,000 messages) each time."""
    if not isinstance(server, ProjectServer) or not supports_user_socket(server):
        log(f"{server.label}: sync: no /sync/ in this revision, skipped")
        return {}
    run = secrets.token_hex(3)
    user = await asyncio.to_thread(register_user, server.port, f"bsync_{run}", "Bench sync")
    with ThreadPoolExecutor(4) as pool:
        rooms = list(
            pool.map(
                lambda r: create_room_as(server.port, user, f"bench-sync-{run}-{r}"),
                range(SYNC_ROOMS),
            )
        )
    await asyncio.to_thread(seed_sync_rooms, server, rooms, user.id, SYNC_CHANGES)
    body = {"rooms": {str(room): 0 for room in rooms}}
    await settle(server)
    times: list[float] = []
    cpu: list[float] = []
    size = 0
    for n in range(3 + SYNC_REQUESTS):
        cpu_before, started = cpu_seconds(server.pid), perf()
        status, answer = await asyncio.to_thread(
            http_json, server.port, "POST", "/api/v1/sync/", body=body, token=user.token
        )
        elapsed, spent = perf() - started, cpu_seconds(server.pid) - cpu_before
        _check(status, answer, 200, "sync")
        changes = sum(len(entry["changes"]) for entry in answer["rooms"])
        if changes != SYNC_ROOMS * SYNC_CHANGES:
            raise BenchError(f"sync: {changes} changes, expected {SYNC_ROOMS * SYNC_CHANGES}")
        if n >= 3:
            times.append(elapsed)
            cpu.append(spent)
            size = len(json.dumps(answer))
    return {
        "sync.p50_ms": 1000 * percentile(times, 0.5),
        "sync.p99_ms": 1000 * percentile(times, 0.99),
        "sync.server_cpu_ms": 1000 * statistics.median(cpu),
        "sync.answer_kib": size / 1024,
    }


# Attacks (issue 11) ----------------------------------------------------------------------
#
# One project server with the project's own default limits, a bystander beside it (one
# socket in a room of its own and a REST client), and one attack after another, each
# after a quiet baseline, each time-bound, while the server's RSS and CPU are sampled.

ATTACKS = ("send-flood", "ping-flood", "slow-readers", "room-update")
ATTACK_QUIET = 3.0  # s of quiet baseline before each attack
ACK_TIMEOUT = 5.0  # s: a bystander send still without an answer by then has "no ack"
SETTLE_MAX = 60.0  # s to wait for the server to be idle again after an attack
REST_INTERVAL = 0.25  # s between the REST bystander's requests
SAMPLE_INTERVAL = 0.25  # s between two readings of the server's VmRSS and CPU
ROOM_RATE = 5.0  # messages/s a membership may send: the project's CHAT_MESSAGE_RATE default
FLOOD_BODY = "x" * 4000  # a 4 KB frame
WIDE_BODY = "\U0001f600" * 4000  # 16,000 bytes of UTF-8: the most a 16 KiB frame carries
SLOW_RCVBUF = 4096  # SO_RCVBUF of the slow readers' sockets
PUMP_BUFFER = 256 * 1024  # bytes a flooding socket may have queued in its transport
PUMP_BATCH = 64  # frames written between two turns of the event loop
HTTP_ERRORS = (
    OSError,
    TimeoutError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    ValueError,
    IndexError,
)


@dataclass
class AttackPlan:
    bystander: User
    bystander_room: int
    flooder: User  # send-flood, in a room of its own
    flood_room: int
    pinger: User  # ping-flood: two sockets, in a room of its own
    ping_room: int
    sender: User  # slow-readers: sends into the busy room, which it owns
    busy_room: int
    readers: list[User]  # slow-readers: 10 sockets each in the busy room
    owner: User  # room-update: owner of the room it patches
    update_room: int


def setup_attack(server: ProjectServer) -> AttackPlan:
    """The attack's users and rooms, each attack in rooms of its own."""
    run, port = secrets.token_hex(3), server.port
    with ThreadPoolExecutor(4) as pool:
        users = list(
            pool.map(lambda i: register_user(port, f"a{run}_{i}", f"Attack {i}"), range(10))
        )
        names = ("bystander", "flood", "ping", "busy", "update")
        rooms = list(
            pool.map(lambda i: create_room_as(port, users[i], f"bench-{names[i]}-{run}"), range(5))
        )
        list(pool.map(lambda u: join_room_as(port, u, rooms[3]), users[5:]))
    return AttackPlan(
        bystander=users[0],
        bystander_room=rooms[0],
        flooder=users[1],
        flood_room=rooms[1],
        pinger=users[2],
        ping_room=rooms[2],
        sender=users[3],
        busy_room=rooms[3],
        readers=users[5:],
        owner=users[4],
        update_room=rooms[4],
    )


class AsyncHTTP:
    """One keep-alive HTTP/1.1 connection on the event loop, each request time-bound.

    The bystanders share the load generator's event loop with the attackers: a thread
    doing blocking requests would also wait for the GIL behind them.
    """

    def __init__(self, port: int, token: str | None = None, timeout: float = ACK_TIMEOUT) -> None:
        self.port, self.token, self.timeout = port, token, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._request(method, path, body), self.timeout)
        except BaseException:
            self.close()
            raise

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {HOST}:{self.port}",
            f"Content-Length: {len(data)}",
        ]
        head.append("Accept: application/json")
        if body is not None:
            head.append("Content-Type: application/json")
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            payload = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")
            payload = b"".join(chunks)
        else:
            payload = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection") == "close":
            self.close()
        return status, payload


class Watch:
    """What the attack scenario measures throughout: the server's RSS and CPU, and the
    bystander, a well-behaved user in a room of its own with one socket that sends a
    message every ``--bystander-interval`` (open loop; each answer timed) and a REST
    client that lists its rooms every 250 ms."""

    def __init__(self, server: ProjectServer, plan: AttackPlan, cfg: Config) -> None:
        self.server, self.user, self.room = server, plan.bystander, plan.bystander_room
        self.interval = cfg.bystander_interval
        self.body = make_body(cfg.body_size)
        self.tag = secrets.token_hex(3)
        self.sends: list[list[Any]] = []  # [sent at, seconds to the answer, "ack" | code]
        self.pending: dict[str, list[Any]] = {}
        self.rest: list[tuple[float, float | None]] = []  # (sent at, seconds or None: failed)
        self.samples: list[tuple[float, int, float]] = []  # (time, VmRSS KiB, CPU s)
        self.ws: wsclient.WSClient | None = None
        self.closes: list[int | None] = []  # close codes of the bystander's own socket
        self.abort = asyncio.Event()  # the server died, or grew past the cap: stop the attack
        self.rss_cap_kib = INF
        self.capped_at: float | None = None
        self.idle_share = 0.05
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.connect()
        loop = asyncio.get_running_loop()
        for job in (self.send_loop, self.rest_loop, self.sample_loop):
            self.tasks.append(loop.create_task(job()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.ws is not None:
            self.ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.ws.closed), 3)
            self.ws.abort()

    async def connect(self) -> None:
        hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_text(text: str) -> None:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind in ("message.ack", "error"):
                record = self.pending.pop(str(frame.get("client_id")), None)
                if record is not None:
                    record[1] = perf() - record[0]
                    record[2] = "ack" if kind == "message.ack" else str(frame.get("code"))
            elif kind == "hello" and not hello.done():
                hello.set_result(None)

        ws = await wsclient.connect(
            HOST,
            self.server.port,
            f"/ws/rooms/{self.room}/",
            token=self.user.token,
            on_text=on_text,
            within=10,
        )
        done, _ = await asyncio.wait({hello, ws.closed}, timeout=10, return_when="FIRST_COMPLETED")
        if hello not in done:
            ws.abort()
            raise BenchError(f"attack bystander: no hello (close code {ws.close_code})")
        ws.closed.add_done_callback(lambda f: self.closes.append(f.result()))
        self.ws = ws

    async def reconnect(self) -> None:
        with contextlib.suppress(BenchError, OSError, TimeoutError, wsclient.HandshakeFailed):
            await self.connect()
        await asyncio.sleep(1.0)  # at most one attempt a second

    async def send_loop(self) -> None:
        started, n = perf(), 0
        reconnecting: asyncio.Task[None] | None = None
        while True:
            n += 1
            delay = started + n * self.interval - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            record: list[Any] = [perf(), None, None]
            self.sends.append(record)
            ws = self.ws
            if ws is not None and ws.is_open:
                client_id = f"{self.tag}-{n}"
                self.pending[client_id] = record
                ws.send_text(
                    f'{{"type":"message.send","body":"{self.body}","client_id":"{client_id}"}}'
                )
            elif reconnecting is None or reconnecting.done():
                reconnecting = asyncio.get_running_loop().create_task(self.reconnect())

    async def rest_loop(self) -> None:
        http = AsyncHTTP(self.server.port, self.user.token)
        next_at = perf()
        try:
            while True:
                await asyncio.sleep(max(0.0, next_at - perf()))
                started = perf()
                next_at = started + REST_INTERVAL
                try:
                    status, _ = await http.request("GET", "/api/v1/rooms/?joined=true")
                except HTTP_ERRORS:
                    status = 0
                self.rest.append((started, perf() - started if status == 200 else None))
        finally:
            http.close()

    async def sample_loop(self) -> None:
        pid = self.server.pid
        while True:
            try:
                rss, cpu = rss_kib(pid), cpu_seconds(pid)
            except (OSError, BenchError):
                self.abort.set()  # the process is gone
                return
            self.samples.append((perf(), rss, cpu))
            if rss > self.rss_cap_kib and not self.abort.is_set():
                self.capped_at = perf()
                self.abort.set()
            await asyncio.sleep(SAMPLE_INTERVAL)

    async def answered(self, since: float, until: float) -> None:
        """Waits for the answers to the sends of that span: at most until each of them
        is ACK_TIMEOUT old."""
        await wait_until(
            lambda: all(r[2] is not None for r in self.sends if since <= r[0] < until),
            max(0.0, until + ACK_TIMEOUT - perf()),
        )

    def cpu_share(self, t0: float, t1: float) -> float:
        """The server's CPU share (1 = its core) between two times, from the samples."""
        span = [(t, cpu) for t, _, cpu in self.samples if t0 <= t <= t1]
        if len(span) < 2:
            return float("nan")
        return (span[-1][1] - span[0][1]) / (span[-1][0] - span[0][0])

    def figures(self, quiet_from: float, started: float, ended: float) -> dict[str, Any]:
        def acks(t0: float, t1: float) -> tuple[list[float], int, int, int]:
            """Ack times of the sends of [t0, t1), INF for "no ack within ACK_TIMEOUT"."""
            records = [r for r in self.sends if t0 <= r[0] < t1]
            refused = sum(1 for r in records if r[2] not in (None, "ack"))
            ms = [
                1000 * r[1] if r[2] == "ack" and r[1] <= ACK_TIMEOUT else INF
                for r in records
                if r[2] in (None, "ack")
            ]
            missing = sum(1 for v in ms if v == INF)
            return ms, len(records), refused, missing

        def rest(t0: float, t1: float) -> tuple[list[float], int, int]:
            records = [s for t, s in self.rest if t0 <= t < t1]
            ms = [1000 * s for s in records if s is not None]
            return ms, len(records), len(records) - len(ms)

        def rank(values: list[float], q: float) -> float:
            """Nearest-rank percentile: defined with INF among the values."""
            if not values:
                return float("nan")
            return sorted(values)[max(0, math.ceil(q * len(values)) - 1)]

        quiet_ms, _, _, _ = acks(quiet_from, started)
        ms, sends, refused, missing = acks(started, ended)
        quiet_rest, _, _ = rest(quiet_from, started)
        rest_ms, requests, failed = rest(started, ended)
        baseline = [kib for t, kib, _ in self.samples if quiet_from <= t < started]
        during = [kib for t, kib, _ in self.samples if t >= started]
        return {
            "ack_p50_ms": rank(ms, 0.5),
            "ack_p99_ms": rank(ms, 0.99),
            "ack_max_ms": max(ms) if ms else float("nan"),
            "sends": sends,
            "acks": len(ms) - missing,
            "refused": refused,
            "missing": missing,
            "quiet_ack_p50_ms": rank(quiet_ms, 0.5),
            "quiet_ack_p99_ms": rank(quiet_ms, 0.99),
            "rest_p50_ms": rank(rest_ms, 0.5),
            "rest_p99_ms": rank(rest_ms, 0.99),
            "rest_requests": requests,
            "rest_failed": failed,
            "quiet_rest_p50_ms": rank(quiet_rest, 0.5),
            "rss_baseline_mib": statistics.median(baseline) / 1024 if baseline else float("nan"),
            "rss_peak_mib": max(during) / 1024 if during else float("nan"),
        }


class AttackPeer(Peer):
    """An attacker's socket: counts what comes back, by type (errors by code)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.kinds: collections.Counter[str] = collections.Counter()
        self.closed_at: float | None = None

    def on_text(self, text: str) -> None:
        frame = json.loads(text)
        kind = str(frame.get("type"))
        if kind == "hello" and not self.hello.done():
            self.hello.set_result(0)
        elif kind == "error":
            kind = f"error {frame.get('code')}"
        self.kinds[kind] += 1

    @property
    def client(self) -> wsclient.WSClient:
        assert self.ws is not None
        return self.ws

    @property
    def transport(self) -> asyncio.Transport:
        transport = self.client.transport
        assert transport is not None
        return transport


@dataclass
class AttackRun:
    server: ProjectServer
    plan: AttackPlan
    cfg: Config
    watch: Watch
    quiet_from: float = 0.0
    started: float = INF  # the window: from begin() to the end of hold()
    until: float = INF
    ended: float | None = None

    async def begin(self) -> None:
        """The quiet baseline, then the start of the window: the attacker's sockets are
        open by then (opening them is not what the window measures)."""
        self.quiet_from = perf()
        await asyncio.sleep(ATTACK_QUIET)
        watch, cfg = self.watch, self.cfg
        watch.abort.clear()
        watch.capped_at = None
        watch.rss_cap_kib = rss_kib(self.server.pid) + 1024 * cfg.attack_max_growth_mib
        self.started = perf()
        self.until = self.started + cfg.attack_seconds

    @property
    def over(self) -> bool:
        return perf() >= self.until or self.watch.abort.is_set()

    async def hold(self) -> None:
        """Until the end of the window (or the abort): the end of what is measured."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.watch.abort.wait(), max(0.0, self.until - perf()))
        self.ended = perf()

    async def open(
        self, specs: list[tuple[User, int]], rcvbuf: int | None = None
    ) -> tuple[list[AttackPeer], collections.Counter[str]]:
        peers, failures = await open_peers(
            self.server,
            specs,
            Stats(),
            self.cfg,
            concurrency=50,
            within=5,  # 200 sockets: at most 40 s, within the attack's time bound
            peer_class=AttackPeer,
            rcvbuf=rcvbuf,
        )
        for peer in peers:
            assert peer.ws is not None
            peer.ws.closed.add_done_callback(lambda _, p=peer: setattr(p, "closed_at", perf()))
        return peers, failures  # type: ignore[return-value]

    def closes(self, peers: list[AttackPeer]) -> str:
        """The server's closes of these sockets so far: "4429 x2 at 1.3-1.5 s"."""
        closed = [p for p in peers if p.closed_at is not None]
        if not closed:
            return "open to the end"
        codes = collections.Counter(p.ws.close_code for p in closed if p.ws is not None)
        times = sorted(p.closed_at - self.started for p in closed if p.closed_at is not None)
        span = f"{times[0]:.1f} s" if times[0] == times[-1] else f"{times[0]:.1f}-{times[-1]:.1f} s"
        what = ", ".join(f"{code} x{n}" if n > 1 else f"{code}" for code, n in codes.items())
        return f"closed {what} at {span}"

    async def pump(self, peer: AttackPeer, frame: Callable[[int], str]) -> int:
        """Writes frames as fast as the socket takes them, to the end of the window."""
        ws, transport = peer.client, peer.transport
        sent = 0
        while not self.over and ws.is_open:
            if transport.get_write_buffer_size() > PUMP_BUFFER:
                await asyncio.sleep(0.001)
                continue
            for _ in range(PUMP_BATCH):
                sent += 1
                ws.send_text(frame(sent))
            await asyncio.sleep(0)
        return sent


async def attack_send_flood(run: AttackRun) -> dict[str, Any]:
    peers, failures = await run.open([(run.plan.flooder, run.plan.flood_room)])
    await run.begin()
    if not peers:
        await run.hold()
        return {"attacker": f"could not connect: {dict(failures)}"}
    peer = peers[0]
    prefix = f'{{"type":"message.send","body":"{FLOOD_BODY}","client_id":"{secrets.token_hex(3)}-'
    try:
        sent = await run.pump(peer, lambda n: f'{prefix}{n}"}}')
        await run.hold()
        closes = run.closes(peers)
    finally:
        await close_peers(peers, within=3)
    acked, limited = peer.kinds["message.ack"], peer.kinds["error rate_limited"]
    return {
        "frames_sent": sent,
        "acked": acked,
        "rate_limited": limited,
        "close_code": peer.ws.close_code if peer.closed_at else None,
        "attacker": f"{sent:,} sends of 4 KB: {acked:,} acked, {limited:,} rate_limited",
        "closed": closes,
    }


async def attack_ping_flood(run: AttackRun) -> dict[str, Any]:
    peers, failures = await run.open([(run.plan.pinger, run.plan.ping_room)] * 2)
    await run.begin()
    if len(peers) < 2:
        await run.hold()
        await close_peers(peers, within=3)
        return {"attacker": f"could not connect: {dict(failures)}"}
    pinger, garbler = peers
    try:
        pings, garbage = await asyncio.gather(
            run.pump(pinger, lambda n: '{"type":"ping"}'), run.pump(garbler, lambda n: "not json")
        )
        await run.hold()
        closes = run.closes(peers)
    finally:
        await close_peers(peers, within=3)
    pongs, invalid = pinger.kinds["pong"], garbler.kinds["error invalid_json"]
    limited = pinger.kinds["error rate_limited"] + garbler.kinds["error rate_limited"]
    return {
        "frames_sent": pings + garbage,
        "pings": pings,
        "pongs": pongs,
        "invalid": garbage,
        "invalid_json": invalid,
        "rate_limited": limited,
        "attacker": f"{pings:,} pings: {pongs:,} pongs; {garbage:,} 'not json': {invalid:,} "
        f"invalid_json; {limited:,} rate_limited",
        "closed": closes,
    }


def server_side_sockets(port: int, client_ports: set[int]) -> dict[int, int]:
    """The client ports whose connection the server's side still holds open (ESTABLISHED
    in /proc/net/tcp; a client that does not read cannot see the server's close), each
    with the bytes queued in the kernel's send buffer for it."""
    held = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] != "01" or int(fields[1].rsplit(":", 1)[1], 16) != port:
                continue
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if remote in client_ports:
                held[remote] = int(fields[4].split(":")[0], 16)
    return held


async def attack_slow_readers(run: AttackRun) -> dict[str, Any]:
    plan = run.plan
    specs = [(user, plan.busy_room) for user in plan.readers for _ in range(10)]
    readers, failures = await run.open(specs, rcvbuf=SLOW_RCVBUF)
    ports: dict[int, AttackPeer] = {}
    for peer in readers:
        peer.transport.pause_reading()  # from now on, never read
        ports[peer.transport.get_extra_info("sockname")[1]] = peer
    senders, _ = await run.open([(plan.sender, plan.busy_room)])
    prefix = f'{{"type":"message.send","body":"{WIDE_BODY}","client_id":"{secrets.token_hex(3)}-'
    gone: dict[int, float] = {}  # client port: when the server's side stopped holding it
    sent, queued = 0, 0
    try:
        await run.begin()
        begun, checked = perf(), 0.0
        while not run.over:
            sender = senders[0].ws if senders else None
            while sender is not None and sender.is_open and perf() >= begun + sent / ROOM_RATE:
                sent += 1
                sender.send_text(f'{prefix}{sent}"}}')
            if perf() - checked >= SAMPLE_INTERVAL:
                checked = perf()
                left = set(ports) - set(gone)
                held = server_side_sockets(run.server.port, left)
                queued = sum(held.values())
                for port in left - set(held):
                    gone[port] = checked - run.started
            await asyncio.sleep(0.02)
        await run.hold()
        # Read again: what the server sent before closing them, its close frames included.
        for peer in readers:
            if not peer.transport.is_closing():
                peer.transport.resume_reading()
        await wait_until(lambda: all(ports[p].client.closed.done() for p in gone), 2.0)
        codes = collections.Counter(
            ports[p].client.close_code for p in gone if ports[p].client.closed.done()
        )
        sender_closes = run.closes(senders)
    finally:
        await close_peers([*readers, *senders], within=3)
    acked = senders[0].kinds["message.ack"] if senders else 0
    limited = senders[0].kinds["error rate_limited"] if senders else 0
    refused = sum(failures.values())
    times = sorted(gone.values())
    if times:
        coded = ", ".join(f"{c} x{n}" for c, n in codes.items()) or "no close frame read"
        span = f"{times[0]:.1f}-{times[-1]:.1f} s"
        closed = f"server closed {len(gone)}/{len(readers)} at {span} ({coded})"
    else:
        closed = f"server closed none of the {len(readers)}"
    closed += f"; {queued / 2**20:,.1f} MiB in their kernel send buffers at the end"
    return {
        "sockets_accepted": len(readers),
        "sockets_refused": refused,
        "refusals": dict(failures),
        "slow_closed": len(gone),
        "slow_closed_first_s": times[0] if times else None,
        "slow_closed_last_s": times[-1] if times else None,
        "slow_close_codes": {str(c): n for c, n in codes.items()},
        "kernel_queued_mib": queued / 2**20,
        "frames_sent": sent,
        "acked": acked,
        "rate_limited": limited,
        "attacker": f"{len(readers)}/{len(specs)} slow sockets accepted"
        + (f" ({', '.join(f'{k} x{v}' for k, v in failures.items())})" if refused else "")
        + f"; {sent:,} sends of 16 KB at {ROOM_RATE:g}/s: {acked:,} acked, {limited:,} rate_limited"
        + ("" if sender_closes == "open to the end" else f", sender {sender_closes}"),
        "closed": closed,
    }


async def attack_room_update(run: AttackRun) -> dict[str, Any]:
    plan = run.plan
    specs = [(plan.owner, plan.update_room)] * 200
    peers, failures = await run.open(specs)
    statuses: collections.Counter[str] = collections.Counter()
    await run.begin()
    turn = iter(range(10**9))

    async def patcher() -> None:
        http = AsyncHTTP(run.server.port, plan.owner.token)
        try:
            while not run.over:
                topic = f"bench topic {next(turn) % 2}"
                try:
                    status, _ = await http.request(
                        "PATCH", f"/api/v1/rooms/{plan.update_room}/", {"topic": topic}
                    )
                    statuses[str(status)] += 1
                except HTTP_ERRORS as error:
                    statuses[type(error).__name__] += 1
                    await asyncio.sleep(0.1)
        finally:
            http.close()

    try:
        await asyncio.gather(*(patcher() for _ in range(4)))
        await run.hold()
        closes = run.closes(peers)
    finally:
        await close_peers(peers, within=3)
    updates = sum(p.kinds["room.updated"] for p in peers)
    refused = sum(failures.values())
    answers = ", ".join(f"{k} x{v:,}" for k, v in sorted(statuses.items()))
    return {
        "sockets_accepted": len(peers),
        "sockets_refused": refused,
        "refusals": dict(failures),
        "patch_200": statuses["200"],
        "patch_429": statuses["429"],
        "patch_statuses": dict(statuses),
        "room_updated_received": updates,
        "attacker": f"{len(peers)}/{len(specs)} sockets accepted"
        + (f" ({', '.join(f'{k} x{v}' for k, v in failures.items())})" if refused else "")
        + f"; PATCH {answers or 'none answered'}; {updates:,} room.updated received",
        "closed": closes,
    }


ATTACK_FUNCTIONS: dict[str, Callable[[AttackRun], Any]] = {
    "send-flood": attack_send_flood,
    "ping-flood": attack_ping_flood,
    "slow-readers": attack_slow_readers,
    "room-update": attack_room_update,
}


async def server_health(server: ProjectServer) -> str:
    if not server.alive():
        return f"no: exited with {server.process.returncode if server.process else '?'}"
    http = AsyncHTTP(server.port)
    started = perf()
    try:
        status, _ = await http.request("GET", "/healthz")
    except HTTP_ERRORS:
        return f"alive; /healthz: no answer in {ACK_TIMEOUT:g} s"
    finally:
        http.close()
    return f"yes; /healthz {status} in {1000 * (perf() - started):,.0f} ms"


async def run_attack(
    server: ProjectServer, plan: AttackPlan, cfg: Config, watch: Watch, name: str
) -> dict[str, Any]:
    """One attack (its sockets, a quiet baseline, its window); then waits for the server
    to be idle again."""
    run = AttackRun(server, plan, cfg, watch)
    log(f"{server.label}: attack {name}, {cfg.attack_seconds:g} s")
    outcome: dict[str, Any]
    try:
        async with asyncio.timeout(ATTACK_QUIET + cfg.attack_seconds + 120):
            outcome = await ATTACK_FUNCTIONS[name](run)
    except (TimeoutError, OSError, BenchError, wsclient.HandshakeFailed) as error:
        log(f"{server.label}: attack {name} failed: {error!r}")
        outcome = {"attacker": f"failed: {error!r}"}
    watch.rss_cap_kib = INF
    started = run.started if run.started < INF else perf()
    ended = run.ended or perf()
    figures: dict[str, Any] = {"seconds": ended - started}
    figures["server_cpu_pct"] = 100 * watch.cpu_share(started, ended)
    await watch.answered(run.quiet_from, ended)
    figures.update(watch.figures(run.quiet_from, started, ended))
    if watch.capped_at is not None:
        figures["stopped_at_growth_limit_s"] = watch.capped_at - started
        outcome["attacker"] = outcome.get("attacker", "") + (
            f"; stopped at {watch.capped_at - started:.1f} s: RSS grew by "
            f"{cfg.attack_max_growth_mib:g} MiB"
        )
    figures.update(outcome)
    calm = perf()
    idle = server.alive() and await settle(server, SETTLE_MAX, watch.idle_share)
    figures["busy_after_s"] = perf() - calm if idle else INF
    figures["rss_after_mib"] = rss_kib(server.pid) / 1024 if server.alive() else float("nan")
    figures["alive"] = server.alive()
    health = await server_health(server)
    if server.alive():
        health += f"; idle {perf() - calm:.0f} s after" if idle else f"; busy {SETTLE_MAX:g} s on"
    figures["health"] = health
    return figures


async def scenario_attack(server: Server, plan: Plan, cfg: Config) -> dict[str, Any]:
    if not isinstance(server, ProjectServer):
        return {}
    if plan.attack is None:
        log(f"{server.label}: registering the attack's users")
        plan.attack = await asyncio.to_thread(setup_attack, server)
    watch = Watch(server, plan.attack, cfg)
    await watch.start()
    figures: dict[str, Any] = {}
    try:
        # "Idle" here is the bystanders' own load on the server, and a little more.
        await asyncio.sleep(2 * ATTACK_QUIET)
        watch.idle_share = min(0.5, watch.cpu_share(perf() - ATTACK_QUIET, perf()) + 0.05)
        await settle(server, SETTLE_MAX, watch.idle_share)
        for name in cfg.attacks:
            if not server.alive():
                figures[f"attack.{name}.health"] = "skipped: the server had died"
                continue
            result = await run_attack(server, plan.attack, cfg, watch, name)
            figures.update({f"attack.{name}.{k}": v for k, v in result.items()})
        figures["attack.bystander_socket_closes"] = len(watch.closes)
    finally:
        await watch.stop()
    if not server.alive():
        log(f"{server.label}: died under attack; restarting it\n{server.log_tail(10)}")
        await asyncio.to_thread(server.restart)
    return figures


SCENARIO_FUNCTIONS = {
    "idle": scenario_idle,
    "user-idle": scenario_user_idle,
    "fanout": scenario_fanout,
    "users": scenario_users,
    "sync": scenario_sync,
    "burst": scenario_burst,
    "latency": scenario_latency,
    "sends": scenario_sends,
    "history": scenario_history,
    "attack": scenario_attack,
}


# Table -----------------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    label: str
    fmt: str
    target: str = ""
    check: Callable[[float, Server], bool] | None = None
    ceiling: bool = True  # does the ceiling have this figure
    ratio: bool = True


def _fanout_target(value: float, server: Server) -> bool:
    return value >= (10_000 if server.redis else 15_000)


FIGURES = [
    Figure(
        "fanout.deliveries_per_s",
        "fan-out 1 room x 50: deliveries/s",
        "{:,.0f}",
        "≥ 15,000 embedded, ≥ 10,000 Redis",
        _fanout_target,
    ),
    Figure("fanout.messages_per_s", "  messages stored/s", "{:,.0f}"),
    Figure(
        "fanout.server_us_per_delivery",
        "  server CPU per delivery, µs",
        "{:,.1f}",
        "≤ 66 (implied by 15,000/s)",
        lambda v, s: v <= 66.7,
    ),
    Figure(
        "fanout.per_cpu_second",
        "  deliveries per server CPU-second",
        "{:,.0f}",
        "≥ 15,000",
        lambda v, s: v >= 15_000,
    ),
    Figure("fanout.server_cpu_pct", "  server CPU, % of its core", "{:.0f}%", ratio=False),
    Figure("fanout.server_system_pct", "  of which in the kernel", "{:.0f}%", ratio=False),
    Figure(
        "fanout.others_on_server_core_pct",
        "  other processes on the server core",
        "{:.0f}%",
        ratio=False,
    ),
    Figure("fanout.client_cpu_pct", "  load generator CPU, % of its core", "{:.0f}%", ratio=False),
    Figure("fanout.lost", "  lost deliveries", "{:,.0f}", "0", lambda v, s: v == 0, ratio=False),
    Figure(
        "fanout.duplicates",
        "  duplicate deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure(
        "fanout.out_of_order",
        "  out-of-order deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure(
        "users.deliveries_per_s",
        "user sockets, 50 users x 10 rooms: deliveries/s",
        "{:,.0f}",
        ceiling=False,
    ),
    Figure(
        "users.server_us_per_delivery",
        "  server CPU per delivery, µs",
        "{:,.1f}",
        "≤ 1.2 x fan-out's",
        ceiling=False,
    ),
    Figure("users.server_cpu_pct", "  server CPU, % of its core", "{:.0f}%", ratio=False),
    Figure("users.lost", "  lost deliveries", "{:,.0f}", "0", lambda v, s: v == 0, ratio=False),
    Figure(
        "users.duplicates",
        "  duplicate deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure(
        "users.out_of_order",
        "  out-of-order deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure(
        "burst.lost",
        "burst into 50 clients: lost deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure(
        "burst.duplicates",
        "  duplicate deliveries",
        "{:,.0f}",
        "0",
        lambda v, s: v == 0,
        ratio=False,
    ),
    Figure("burst.seconds", "  time to deliver the burst, s", "{:,.2f}"),
    Figure(
        "latency.p50_ms",
        "latency at 25 msg/s x 50: p50 ms",
        "{:,.1f}",
        "≤ 10",
        lambda v, s: v <= 10,
    ),
    Figure("latency.p90_ms", "  p90 ms", "{:,.1f}"),
    Figure("latency.p99_ms", "  p99 ms", "{:,.1f}", "≤ 40", lambda v, s: v <= 40),
    Figure("latency.lost", "  lost deliveries", "{:,.0f}", "0", lambda v, s: v == 0, ratio=False),
    Figure(
        "sends.acked_per_s",
        "sends, 100 senders x 50 rooms: acked/s",
        "{:,.0f}",
        "≥ 5,000",
        lambda v, s: v >= 5000,
    ),
    Figure(
        "sends.server_us_per_ack",
        "  server CPU per acked send, µs",
        "{:,.0f}",
        "≤ 200 (implied)",
        lambda v, s: v <= 200,
    ),
    Figure("sends.server_cpu_pct", "  server CPU, % of its core", "{:.0f}%", ratio=False),
    Figure("sends.server_system_pct", "  of which in the kernel", "{:.0f}%", ratio=False),
    Figure(
        "sends.others_on_server_core_pct",
        "  other processes on the server core",
        "{:.0f}%",
        ratio=False,
    ),
    Figure("sends.lost", "  lost deliveries", "{:,.0f}", "0", lambda v, s: v == 0, ratio=False),
    Figure(
        "idle.sockets",
        "idle authenticated sockets held",
        "{:,.0f}",
        "10,000 (--idle 10000)",
        ratio=False,
    ),
    Figure("idle.failed", "  failed connects", "{:,.0f}", "0", lambda v, s: v == 0, ratio=False),
    Figure(
        "idle.connect_per_s",
        "  connects/s",
        "{:,.0f}",
        "≥ 1,000",
        lambda v, s: v >= 1000,
    ),
    Figure(
        "idle.server_ms_per_connect",
        "  server CPU per connect, ms",
        "{:,.2f}",
        "≤ 1 (implied)",
        lambda v, s: v <= 1.0,
    ),
    Figure(
        "idle.rss_kib_per_socket",
        "  server RSS per idle socket, KiB",
        "{:,.1f}",
        "≤ 20",
        lambda v, s: v <= 20,
    ),
    Figure(
        "user_idle.user_socket_kib",
        "idle user socket (10 rooms), KiB",
        "{:,.1f}",
        "< 2 x a room socket's",
        ceiling=False,
    ),
    Figure(
        "user_idle.room_socket_kib", "  idle room socket, same run, KiB", "{:,.1f}", ceiling=False
    ),
    Figure(
        "user_idle.user_vs_room_sockets",
        "  user socket / room socket",
        "{:,.2f}x",
        "< 2",
        lambda v, s: v < 2,
        ceiling=False,
    ),
    Figure(
        "sync.p50_ms",
        "POST /sync/, 200 rooms x 20 changes: p50 ms",
        "{:,.1f}",
        "< 200 (PostgreSQL)",
        lambda v, s: v < 200,
        ceiling=False,
    ),
    Figure("sync.p99_ms", "  p99 ms", "{:,.1f}", ceiling=False),
    Figure("sync.server_cpu_ms", "  server CPU per request, ms", "{:,.1f}", ceiling=False),
    Figure(
        "history.first_p50_ms",
        "history: first page p50 ms",
        "{:,.2f}",
        "< 10",
        lambda v, s: v < 10,
        ceiling=False,
    ),
    Figure("history.first_p90_ms", "  first page p90 ms", "{:,.2f}", ceiling=False),
    Figure(
        "history.deep_p50_ms",
        "  page at depth p50 ms",
        "{:,.2f}",
        "< 10",
        lambda v, s: v < 10,
        ceiling=False,
    ),
    Figure("history.deep_p90_ms", "  page at depth p90 ms", "{:,.2f}", ceiling=False),
    Figure(
        "history.deep_vs_first",
        "  depth / first page (p50)",
        "{:,.2f}x",
        "≈ 1",
        lambda v, s: v <= 1.5,
        ceiling=False,
    ),
]


def aggregate(values: list[Any]) -> tuple[float | None, str]:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and v == v]
    if not numbers:
        return None, ""
    middle = statistics.median(numbers)
    if len(numbers) == 1 or middle == 0:
        return middle, ""
    spread = (max(numbers) - min(numbers)) / 2 / abs(middle)
    return middle, f" ±{100 * spread:.0f}%"


def render_table(servers: list[Server], results: dict[str, dict[str, list[Any]]]) -> str:
    projects = [s for s in servers if s.kind == "project"]
    ceiling = next((s for s in servers if s.kind == "ceiling"), None)
    header = ["figure", *(s.column for s in projects)]
    if ceiling is not None:
        header.append("ceiling")
        header.extend(f"{s.column.split()[1]} ÷ ceiling" for s in projects)
    header.append("issue 6 target")
    rows = [header]
    for fig in FIGURES:
        cells = [fig.label]
        present = False
        project_values = []
        for s in projects:
            value, spread = aggregate(results.get(s.column, {}).get(fig.key, []))
            project_values.append(value)
            if value is None:
                cells.append("")
                continue
            present = True
            mark = ""
            if fig.check is not None:
                mark = " ✓" if fig.check(value, s) else " ✗"
            cells.append(fig.fmt.format(value) + spread + mark)
        if ceiling is not None:
            value, spread = (None, "")
            if fig.ceiling:
                value, spread = aggregate(results.get(ceiling.column, {}).get(fig.key, []))
            cells.append("" if value is None else fig.fmt.format(value) + spread)
            present = present or value is not None
            for pv in project_values:
                if fig.ratio and value and pv is not None:
                    cells.append(f"{pv / value:,.3g}x")
                else:
                    cells.append("")
        cells.append(fig.target)
        if present:
            rows.append(cells)
    return grid(rows) if len(rows) > 1 else ""


def grid(rows: list[list[str]]) -> str:
    """A Markdown table, the first row its header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# Per attack: label, figures (after "attack.<name>."), and how to show them: a number
# format for each figure joined by a layout, or None for a text figure.
MS, COUNT = "{:,.1f}", "{:,.0f}"
ATTACK_ROWS: list[tuple[str, tuple[str, ...], tuple[str, ...] | None, str]] = [
    (
        ": bystander ack p50 / p99 / max, ms",
        ("ack_p50_ms", "ack_p99_ms", "ack_max_ms"),
        (MS, MS, MS),
        "{} / {} / {}",
    ),
    (
        "  quiet before it: ack p50, REST p50, ms",
        ("quiet_ack_p50_ms", "quiet_rest_p50_ms"),
        (MS, MS),
        "{}, {}",
    ),
    (
        "  bystander sends: acked / refused / no ack",
        ("acks", "refused", "missing"),
        (COUNT, COUNT, COUNT),
        "{} / {} / {}",
    ),
    (
        "  REST bystander p50 / p99 ms, failed",
        ("rest_p50_ms", "rest_p99_ms", "rest_failed"),
        (MS, MS, COUNT),
        "{} / {}, {}",
    ),
    (
        "  server RSS baseline -> peak -> after, MiB",
        ("rss_baseline_mib", "rss_peak_mib", "rss_after_mib"),
        (COUNT, COUNT, COUNT),
        "{} -> {} -> {}",
    ),
    ("  server CPU, % of its core", ("server_cpu_pct",), ("{:,.0f}%",), "{}"),
    ("  attacker", ("attacker",), None, "{}"),
    ("  attacker's sockets", ("closed",), None, "{}"),
    ("  server alive after it", ("health",), None, "{}"),
]


def _attack_number(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    if value == INF:
        return f"> {1000 * ACK_TIMEOUT:,.0f}"  # only ack times are infinite: no ack in time
    return fmt.format(value)


def render_attack_table(
    servers: list[Server], results: dict[str, dict[str, list[Any]]], cfg: Config
) -> str:
    projects = [s for s in servers if s.kind == "project"]
    title = f"attack ({cfg.attack_seconds:g} s each, project defaults)"
    rows = [[title, *(s.column for s in projects)]]
    for name in cfg.attacks:
        for label, keys, fmt, layout in ATTACK_ROWS:
            cells = [name + label if label.startswith(":") else label]
            for s in projects:
                got = results.get(s.column, {})
                series = [got.get(f"attack.{name}.{key}", []) for key in keys]
                if not any(series):
                    cells.append("")
                elif fmt is None:
                    cells.append(" | ".join(dict.fromkeys(str(v) for v in series[0])))
                else:
                    values = [aggregate(v)[0] for v in series]
                    numbers = (_attack_number(v, f) for v, f in zip(values, fmt, strict=True))
                    cells.append(layout.format(*numbers))
            rows.append(cells)
    return grid(rows)


# Main ------------------------------------------------------------------------------------


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


async def run(
    cfg: Config,
    servers: list[Server],
    meta: dict[str, Any],
    results: dict[str, dict[str, list[Any]]],
) -> None:
    plans: dict[str, Plan] = {}
    for server in servers:
        if isinstance(server, ProjectServer) and cfg.scenarios == ["attack"]:
            server.default_limits = True  # nothing else to run: start it that way
        await asyncio.to_thread(server.start)
        if isinstance(server, ProjectServer):
            plans[server.column] = await asyncio.to_thread(setup_project, server, cfg)
        else:
            plans[server.column] = setup_ceiling(cfg)
    for scenario in cfg.scenarios:
        for repeat in range(cfg.repeat):
            # Interleaved, so the project and the ceiling see the same machine noise.
            for server in servers:
                if scenario in PROJECT_ONLY and server.kind != "project":
                    continue
                if not server.alive():
                    raise BenchError(f"{server.label} died:\n{server.log_tail()}")
                attack = scenario == "attack" and isinstance(server, ProjectServer)
                if attack and not server.default_limits:  # type: ignore[attr-defined]
                    log(f"{server.label}: restarting with the project's default limits")
                    server.default_limits = True  # type: ignore[attr-defined]
                    await asyncio.to_thread(server.restart)
                log(f"{server.label}: {scenario} #{repeat + 1}")
                figures = await SCENARIO_FUNCTIONS[scenario](server, plans[server.column], cfg)
                for key, value in figures.items():
                    results[server.column][key].append(value)
                log(f"  {summary_line(scenario, figures)}")
    meta["setup_seconds"] = {k: round(p.setup_seconds, 1) for k, p in plans.items()}


def summary_line(scenario: str, figures: dict[str, Any]) -> str:
    parts = []
    for key, value in figures.items():
        name = key.split(".", 1)[1]
        if isinstance(value, float):
            parts.append(f"{name}={value:,.2f}")
        else:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    if cfg.client_cpu is not None:
        os.sched_setaffinity(0, {cfg.client_cpu})
    workdir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    try:
        servers: list[Server] = [
            ProjectServer(cfg, workdir, backend, rev, impl)
            for rev in cfg.revs
            for backend in cfg.backends
            for impl in cfg.servers
        ]
    except BenchError as error:
        log(f"FAILED: {error}")
        return 2
    if cfg.ceiling and set(cfg.scenarios) - set(PROJECT_ONLY):
        servers.append(CeilingServer(cfg, workdir))
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git": git_revision(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "server_core": cfg.server_cpu,
        "client_core": cfg.client_cpu,
        "client_loop": "uvloop" if cfg.client_uvloop else "asyncio",
        "python": platform.python_version(),
        "ulimit_n": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "load_average_start": load_average(),
        "servers": {s.column: s.label for s in servers},
        "options": {
            "quick": cfg.quick,
            "repeat": cfg.repeat,
            "duration_s": cfg.duration,
            "fanout": f"{cfg.fanout_clients} clients, "
            f"{cfg.fanout_senders} senders x window {cfg.window}",
            "burst": cfg.burst,
            "latency": f"{cfg.latency_rate:g} msg/s for {cfg.latency_duration:g} s",
            "sends": f"{2 * cfg.send_rooms} senders x window {cfg.send_window} "
            f"in {cfg.send_rooms} rooms",
            "idle": cfg.idle,
            "history": f"{cfg.history_size:,} messages, depth {cfg.history_depth:g}",
            "body": cfg.body_size,
            "attack": f"{','.join(cfg.attacks)}, {cfg.attack_seconds:g} s each, bystander every "
            f"{cfg.bystander_interval:g} s"
            if "attack" in cfg.scenarios
            else None,
            "server_env": cfg.server_env,
            "db_url_query": cfg.db_url_query,
            "server_uvloop": cfg.server_uvloop or None,
            "server": ",".join(cfg.servers) if cfg.servers != ["daphne"] else None,
        },
    }
    labels = ", ".join(s.label for s in servers)
    log(f"work dir {workdir}; scenarios {', '.join(cfg.scenarios)}; servers {labels}")
    results: dict[str, dict[str, list[Any]]] = {
        s.column: collections.defaultdict(list) for s in servers
    }
    status = 0
    try:
        if cfg.client_uvloop:
            try:
                import uvloop
            except ImportError:
                cfg.client_uvloop = False
                meta["client_loop"] = "asyncio"
        runner = uvloop.run if cfg.client_uvloop else asyncio.run  # type: ignore[attr-defined]
        runner(run(cfg, servers, meta, results))
    except BenchError as error:
        log(f"FAILED: {error}")
        status = 1
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            server.cleanup()
        if not cfg.keep and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif status:
            log(f"logs kept in {workdir}")
    meta["load_average_end"] = load_average()
    if not any(results.values()):
        return status or 1
    table = render_table(servers, results)
    attacked = any(k.startswith("attack.") for r in results.values() for k in r)
    print()
    print(f"chat bench · {meta['date']} · git {meta['git']} · {meta['command']}")
    print(
        f"{meta['cpu']} · {meta['cores']} cores · servers on core {cfg.server_cpu}, "
        f"load generator on core {cfg.client_cpu} ({meta['client_loop']}) · "
        f"load average {meta['load_average_start']} → {meta['load_average_end']}"
    )
    for name, label in meta["servers"].items():
        print(f"  {name}: {label}")
    print(
        "  " + "; ".join(f"{k} {v}" for k, v in meta["options"].items() if v not in ({}, None, ""))
    )
    if table:
        print()
        print(table)
        print()
        print("✓/✗: against issue 6's figure; ÷ ceiling: the project's figure over the ceiling's;")
        print("±: half the spread between repeats, relative to the median. See bench/README.md.")
    if attacked:
        print()
        print(render_attack_table(servers, results, cfg))
        print()
        print(
            f"bystander: one socket sending every {1000 * cfg.bystander_interval:g} ms in a room "
            f"of its own, and GET /rooms/?joined=true every {1000 * REST_INTERVAL:g} ms; no ack: "
            f"none within {ACK_TIMEOUT:g} s. Figures of the attack window. See bench/README.md."
        )
    if cfg.json_path is not None:
        payload = {
            "meta": meta,
            "results": {k: dict(v) for k, v in results.items()},
            "median": {
                k: {key: aggregate(vals)[0] for key, vals in v.items()} for k, v in results.items()
            },
        }
        cfg.json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        log(f"figures saved to {cfg.json_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
