"""Django's PostgreSQL backend, whose pool timeouts say which database failed and why.

With a connection pool, PostgreSQL's answer to a failed connection (``database "chat"
does not exist``, a refused connection, a wrong password) reached only the pool's
warnings; the error a request, ``migrate`` or ``/healthz`` raised said "couldn't get a
connection after 2.00 sec". Each process remembers the last failure to connect to each
database until a connection succeeds, and a pool timeout while the last attempt failed
(recently) raises that reason instead, naming the database. A timeout of a pool whose
connections are all busy stays as it was.
"""

import threading
import time
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import PoolTimeout

# (dbname, host, port) -> (when, why): the last failure, until a connection succeeds.
_failures: dict[tuple[str, str, str], tuple[float, str]] = {}
# An older failure explains no timeout: the pool would have retried since.
RECENT_SECONDS = 60.0
_failures_lock = threading.Lock()


def _target(params: dict[str, Any]) -> tuple[str, str, str]:
    return (str(params.get("dbname", "")), str(params.get("host", "")), str(params.get("port", "")))


class FailureRecordingConnection(psycopg.Connection[Any]):
    """psycopg's connection, as the pool opens it, remembering why opening failed."""

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
        target = _target(kwargs)
        try:
            connection = super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as error:
            with _failures_lock:
                _failures[target] = (time.monotonic(), " ".join(str(error).split()))
            raise
        with _failures_lock:
            _failures.pop(target, None)
        return connection


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        options = self.settings_dict["OPTIONS"]
        if options.get("pool") is True:
            options["pool"] = {}
        if isinstance(options.get("pool"), dict):
            options["pool"].setdefault("connection_class", FailureRecordingConnection)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        try:
            return super().get_new_connection(conn_params)
        except PoolTimeout as timeout:
            dbname, host, port = target = _target(conn_params)
            with _failures_lock:
                failed_at, cause = _failures.get(target, (0.0, ""))
            if not cause or time.monotonic() - failed_at > RECENT_SECONDS:
                raise  # the database answers: the pool's connections are all busy
            where = f"{host or 'localhost'}:{port or 5432}"
            raise self.Database.OperationalError(
                f'cannot connect to the database "{dbname}" on {where} ({timeout}): {cause}'
            ) from timeout
