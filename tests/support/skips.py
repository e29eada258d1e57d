"""Tests that need a service: skipped where it is absent, failed where CI demands it."""

import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings


def reachable(url: str, default_port: int) -> bool:
    """Whether something listens at the URL's host and port."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail it where CI demands the services."""
    if settings.REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is set but {reason}")
    pytest.skip(reason)
