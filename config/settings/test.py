"""Test settings: only overrides. DATABASE_URL and REDIS_URL still switch the services."""

import os
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env.str(
    "DATABASE_URL", default=""
):
    # pytest-django turns this into a shared-cache in-memory database.
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }

if REDIS_URL:
    # A prefix of our own, so concurrent runs on one Redis never hear each other.
    from .base import CHANNEL_LAYERS

    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test-{uuid.uuid4().hex[:8]}"

# High enough that the suite never trips them; tests that check throttling lower them.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"register": "10000/minute", "login": "10000/minute"},
}

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")

if REDIS_URL:
    from .base import CACHES

    CACHES["default"]["KEY_PREFIX"] = CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
