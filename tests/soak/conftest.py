"""Soak tests: a real daphne process under steady load (marker ``soak``).

The server fixtures are the end-to-end ones (``tests/e2e/conftest.py``), imported here
so that pytest offers them to this folder too.
"""

import pytest

from tests.e2e.conftest import (  # noqa: F401  (fixtures, found by name)
    e2e_channel_prefix,
    e2e_database,
    e2e_redis_url,
    server,
    start_server,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "soak: steady load on a real server for a while (SOAK_SECONDS, 15 by default)",
    )
