"""Settings for every environment; anything environment-specific comes from the environment.

The defaults work on a laptop: SQLite in the project folder and the in-memory channel
layer. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis for production,
where several server processes share them.
"""

import contextlib
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from config.headers import add_static_headers

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False):
    env.read_env(str(BASE_DIR / ".env"))

# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Published with the code, so anyone can sign tokens with it: only ever used in debug.
_DEV_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105


def _local_secret_key(path: Path) -> str:
    """The key kept in ``path``, made at random on first use (readable by the owner only).

    A file rather than a fresh key per start: tokens and sessions survive a restart, and
    several processes started on one machine agree. It is linked into place only once
    complete, so a process starting at the same moment never reads half a key.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")  # 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    SECRET_KEY = _local_secret_key(
        Path(env.str("DJANGO_SECRET_KEY_FILE", default=str(BASE_DIR / ".secret_key")))
    )
if not SECRET_KEY or (SECRET_KEY == _DEV_SECRET_KEY and not DEBUG):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is empty or the published development key; set a long random one "
        "(or unset it to have one made in DJANGO_SECRET_KEY_FILE)."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# APPS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",  # before staticfiles: makes runserver serve WebSockets too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: /api/docs/ works offline
    "channels",
    "accounts",
    "rooms",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.static.AsyncWhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",  # 308, not 301, when a write lacks its slash
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The web client (web/, no build step) is served at / by WhiteNoise, under daphne too.
WHITENOISE_ROOT = BASE_DIR / "web"
WHITENOISE_INDEX_FILE = True
WHITENOISE_ADD_HEADERS_FUNCTION = add_static_headers
# Django's own responses (the admin, the API docs); WhiteNoise's get add_static_headers.
X_FRAME_OPTIONS = "DENY"
# Also serve the apps' static files (the admin's, Swagger UI's) where collectstatic has
# not filled STATIC_ROOT: a bare ``daphne config.asgi:application``, the test servers.
# They are the same files collectstatic copies, indexed once at startup.
WHITENOISE_USE_FINDERS = True

# DATABASES
# ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue
            # on the busy timeout instead of failing with "database is locked" on upgrade.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # FULL, not NORMAL: in WAL mode NORMAL skips the sync at commit, so a power
            # cut can lose commits that were already acknowledged to clients.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        }
    )
    # Persistent connections: the socket path reaches the database through one worker
    # thread, and a SQLite connection that closes after each call reopens, re-runs its
    # PRAGMAs and, as the last connection of a WAL database, checkpoints on every close.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with pool timeouts that name the database and PostgreSQL's reason.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    # A database that stops answering must not hold the shared database thread forever.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # A connection pool (psycopg_pool), not persistent connections: under ASGI each
    # HTTP request runs in a thread of its own, so a persistent connection is never
    # reused and every request paid for a new PostgreSQL connection. Connections are
    # checked on checkout (CONN_HEALTH_CHECKS), so none that died with a database
    # restart is handed out.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"].setdefault(
        "pool",
        {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=2.0),
        },
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # with a pool: check on checkout

# AUTHENTICATION
# ------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# CHANNELS AND CACHE
# ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYERS: dict[str, dict[str, Any]]
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py 8 defaults socket_timeout to 5 s, the same as
                        # channels-redis's blocking read: the read times out under load
                        # and kills the socket with 1011. Keep it well above.
                        "socket_timeout": 30,
                        "socket_connect_timeout": 5,
                        # A pooled connection that died with Redis fails its next
                        # command; retry once on a fresh one, or the first broadcasts
                        # after every Redis restart are lost.
                        "retry": Retry(NoBackoff(), 1),
                        # redis-py 8's pool holds at most 100 connections and fails the
                        # 101st at once (MaxConnectionsError): a reconnect storm of a few
                        # hundred sockets crashed their connect with 1011.
                        "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000),
                    }
                ],
                # The default capacity (100) silently drops group messages in a burst.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000),
                "expiry": 60,
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.layers.SweepingInMemoryChannelLayer",
            "CONFIG": {"capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000)},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# CORS
# ------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"

# REST FRAMEWORK
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "register": env.str("THROTTLE_REGISTER", default="20/hour"),
        "login": env.str("THROTTLE_LOGIN", default="30/minute"),
        # Failed logins per username and client address, the admin's included.
        "login_failed": env.str("THROTTLE_LOGIN_FAILED", default="10/hour"),
    },
    # Only trust X-Forwarded-For as far as the configured number of proxies.
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "ALGORITHM": "HS256",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chat API",
    "DESCRIPTION": "Real-time chat: REST under /api/v1/, WebSocket under /ws/rooms/{room_id}/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar, pinned with the project, not a CDN's @latest.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One tag per resource, in this order: client generators make one class of each.
    "TAGS": [
        {"name": "auth", "description": "Registering, logging in, refreshing tokens, logout."},
        {"name": "users", "description": "Your own profile, and other users as others see them."},
        {"name": "rooms", "description": "Finding, creating, joining and changing rooms."},
        {"name": "members", "description": "Who is in a room; adding and removing members."},
        {"name": "messages", "description": "A room's history; sending, editing, deleting."},
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_unauthenticated_responses",
        "config.schema.describe_path_parameters",
    ],
}

# CHAT
# ------------------------------------------------------------------------------
# Token bucket per user per room, shared by WebSocket and REST sends.
CHAT_MESSAGE_RATE = env.float("CHAT_MESSAGE_RATE", default=5.0)  # tokens per second
CHAT_MESSAGE_BURST = env.int("CHAT_MESSAGE_BURST", default=10)
CHAT_MAX_FRAME_BYTES = 16 * 1024
# What one socket, user or address may take of a process (API.md, Limits; realtime.limits
# and config.transport). Inbound frames per socket: a steady rate with bursts; a frame
# beyond is answered with rate_limited, and a socket that goes on past
# CHAT_FLOOD_CLOSE_FRAMES refused frames within CHAT_FLOOD_WINDOW_SECONDS is closed (4429).
CHAT_FRAME_RATE = env.float("CHAT_FRAME_RATE", default=20.0)  # frames per second
CHAT_FRAME_BURST = env.int("CHAT_FRAME_BURST", default=60)
CHAT_FLOOD_CLOSE_FRAMES = env.int("CHAT_FLOOD_CLOSE_FRAMES", default=1000)
CHAT_FLOOD_WINDOW_SECONDS = env.float("CHAT_FLOOD_WINDOW_SECONDS", default=10.0)
# Frames waiting in the transport for the consumer; past it the socket is closed (4429).
CHAT_MAX_QUEUED_FRAMES = env.int("CHAT_MAX_QUEUED_FRAMES", default=256)
# What waits to be sent to a client that does not read; past it, closed with 4408.
CHAT_MAX_UNSENT_BYTES = env.int("CHAT_MAX_UNSENT_BYTES", default=1024 * 1024)
# Open sockets per user over every process, and per client address in one process.
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
CHAT_MAX_SOCKETS_PER_ADDRESS = env.int("CHAT_MAX_SOCKETS_PER_ADDRESS", default=200)
# How often each process re-joins its channel-layer groups (a Redis restarted without
# persistence forgets them) and refreshes its sockets' presence, which lapses after
# three missed refreshes.
CHAT_REFRESH_SECONDS = env.float("CHAT_REFRESH_SECONDS", default=30.0)
# How long one broadcast may wait for the channel layer before it is dropped (clients
# fill the gap from the database); what waits on it, a REST send say, waits no longer.
CHAT_PUBLISH_TIMEOUT_SECONDS = env.float("CHAT_PUBLISH_TIMEOUT_SECONDS", default=1.0)

# LOGGING
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
