"""A database that cannot be reached is named with the reason, not only a pool timeout.

With the connection pool, PostgreSQL's own answer (``database "x" does not exist``,
a refused connection, a wrong password) used to end as "couldn't get a connection
after 2.00 sec", and the reason only in earlier warnings of the pool.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
import pytest
from django.db import OperationalError
from django.db.utils import load_backend

from tests.support.skips import reachable, skip_or_fail

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def missing_database_url() -> str:
    """A ``DATABASE_URL`` on the suite's (or the local) PostgreSQL naming no database."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql"):
        url = LOCAL_POSTGRES
    if not reachable(url, 5432):
        skip_or_fail(f"PostgreSQL at {urlsplit(url).netloc} is not reachable")
    name = f"missing_{uuid.uuid4().hex[:10]}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def pooled(url: str, *, name: str | None = None, **pool: Any) -> dict[str, Any]:
    """Settings of one database on ``url`` through the project's pooled backend."""
    database: dict[str, Any] = environ.Env.db_url_config(url)
    database.update(
        ENGINE="config.postgresql",  # what the settings make of a postgres:// URL
        OPTIONS={"connect_timeout": 5, "pool": {"min_size": 1, **pool}},
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=True,
        ATOMIC_REQUESTS=False,
        AUTOCOMMIT=True,
        TIME_ZONE=None,
        TEST={},
    )
    if name is not None:
        database["NAME"] = name
    return database


def test_migrate_names_a_missing_database_and_why(missing_database_url: str) -> None:
    name = urlsplit(missing_database_url).path.lstrip("/")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": missing_database_url,
        "DATABASE_POOL_TIMEOUT": "1",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]  # what the traceback ends with
    assert error.startswith("django.db.utils.OperationalError: "), result.stderr
    assert f'database "{name}"' in error, error
    assert f'database "{name}" does not exist' in error, error


def test_the_pooled_backend_raises_the_reason_with_the_database_name(
    missing_database_url: str, django_db_blocker: Any
) -> None:
    database = pooled(missing_database_url, max_size=2, timeout=1.0)
    wrapper = load_backend(database["ENGINE"]).DatabaseWrapper(database, alias="missing")
    try:
        with django_db_blocker.unblock(), pytest.raises(OperationalError) as raised:
            wrapper.ensure_connection()
    finally:
        wrapper.close_pool()

    message = str(raised.value)
    assert f'database "{database["NAME"]}"' in message
    assert "does not exist" in message
    assert f"{database['HOST']}:{database['PORT']}" in message


def test_a_busy_pool_still_says_it_timed_out(
    missing_database_url: str, django_db_blocker: Any
) -> None:
    # A database that exists: the pool's one connection is merely taken.
    database = pooled(missing_database_url, name="postgres", max_size=1, timeout=0.5)
    backend = load_backend(database["ENGINE"])
    holder = backend.DatabaseWrapper(database, alias="busy")
    waiter = backend.DatabaseWrapper(database, alias="busy")  # the same pool
    try:
        with django_db_blocker.unblock():
            holder.ensure_connection()
            with pytest.raises(OperationalError) as raised:
                waiter.ensure_connection()
    finally:
        holder.close()
        holder.close_pool()

    assert str(raised.value).startswith("couldn't get a connection after")
