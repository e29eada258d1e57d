"""Issue 11's hardening, end to end: a server started as `make run` starts it."""

import time
import uuid
from pathlib import Path

import jwt
import pytest

from tests.support.client import register
from tests.support.servers import StartServer

pytestmark = pytest.mark.e2e

# The key in config/settings/base.py, which anyone can read.
PUBLISHED_DEV_KEY = "django-insecure-development-key-do-not-use-in-production"


def test_without_a_secret_key_a_token_signed_with_the_published_key_is_refused(
    start_server: StartServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "secret_key"
    server = start_server(env={"DJANGO_SECRET_KEY": None, "DJANGO_SECRET_KEY_FILE": str(key_file)})
    alice = register(server, "alice")
    now = int(time.time())
    forged = jwt.encode(
        {
            "token_type": "access",
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "user_id": str(alice.id),
        },
        PUBLISHED_DEV_KEY,
        algorithm="HS256",
    )

    assert server.request("GET", "/api/v1/users/me/", token=alice.access).status == 200
    assert server.request("GET", "/api/v1/users/me/", token=forged).status == 401
    assert key_file.exists()
