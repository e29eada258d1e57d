"""Test settings: only overrides. DATABASE_URL and REDIS_URL still switch the services."""

import os
import tempfile
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env.str(
    "DATABASE_URL", default=""
):
    # A file, not shared-cache memory: in-memory SQLite locks whole tables without
    # honouring the busy timeout, which hides (and fakes) concurrency behaviour.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"chat-test-{uuid.uuid4().hex[:8]}.sqlite3")
    }

# Connections opened in worker threads (database_sync_to_async) must not outlive a test.
DATABASES["default"]["CONN_MAX_AGE"] = 0

if REDIS_URL:
    # A prefix of our own, so concurrent runs on one Redis never hear each other.
    from .base import CHANNEL_LAYERS

    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{uuid.uuid4().hex[:8]}"

# High enough that the suite never trips them; tests that check throttling lower them.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_RATES": {
        "register": "10000/minute",
        "login": "10000/minute",
        "login_failed": "10000/minute",
    },
}

# The same for the per-socket frame limits and socket counts; tests of the limits lower them.
CHAT_FRAME_RATE = 1_000_000.0
CHAT_FRAME_BURST = 1_000_000
CHAT_MAX_SOCKETS_PER_USER = 1_000
CHAT_MAX_SOCKETS_PER_ADDRESS = 100_000

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")

if REDIS_URL:
    from .base import CACHES

    CACHES["default"]["KEY_PREFIX"] = CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
