import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from realtime import publish
from realtime.hub import close_hub
from rooms.models import Room
from tests.factories import RoomFactory, UserFactory
from tests.support.skips import reachable, skip_or_fail

# The server fixtures of the e2e, scale, soak and client tests: one plugin for them all.
pytest_plugins = ["tests.support.servers", "tests.support.services"]


@pytest.fixture
def redis_url() -> str:
    """The Redis server the settings use; skips (or fails in CI) without one."""
    url = settings.REDIS_URL
    if not url:
        skip_or_fail("REDIS_URL is not set: this test needs Redis")
    if not reachable(url, 6379):
        skip_or_fail(f"Redis at {url} is not reachable")
    return url


@pytest.fixture
def postgres() -> None:
    """Skips (or fails in CI) unless the tests run on PostgreSQL."""
    if connections["default"].vendor != "postgresql":
        skip_or_fail("DATABASE_URL does not name PostgreSQL: this test needs it")


@pytest.fixture(autouse=True)
async def _fresh_loop_state() -> AsyncIterator[None]:
    """Undoes what one test's event loop left behind for the next one.

    A server process has one loop for its life; tests have one each. The hub belongs to
    its loop and is closed with it (a reader blocked in Redis would hang the loop's
    shutdown). The connection the consumers' worker thread opened is closed, so the
    test database can be flushed and dropped (PostgreSQL refuses while it is open).
    """
    yield
    await close_hub()
    await database_sync_to_async(connections.close_all)()


Published = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def capture_events(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Every event published to the channel layer from now on, as ``(group, event)``,
    in order: they are recorded at the one seam to the layer (``realtime.publish``)
    instead of being sent. Events published on commit appear only once the transaction
    commits (``django_capture_on_commit_callbacks(execute=True)``, or a transactional
    test)."""
    published: Published = []

    async def record(group: str, event: Any) -> None:
        published.append((group, dict(event)))

    monkeypatch.setattr(publish, "_send_to_group", record)
    return published


def event_types(published: Published) -> list[tuple[str, str]]:
    """``(group, type)`` of each captured event: what most assertions need."""
    return [(group, event["type"]) for group, event in published]


def change_frames(published: Published) -> list[dict[str, Any]]:
    """The frames of a room's ``message.changes`` events, decoded, as sockets send them."""
    return [
        json.loads(text)
        for _, event in published
        if event["type"] == "message.changes"
        for _, _, text in event["frames"]
    ]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db: None) -> User:
    return UserFactory.create()


@pytest.fixture
def other_user(db: None) -> User:
    return UserFactory.create()


@pytest.fixture
def room(user: User) -> Room:
    """A public room owned by ``user``."""
    return RoomFactory.create(owner=user)


def bearer(user: User) -> str:
    return f"Bearer {AccessToken.for_user(user)}"


@pytest.fixture
def auth_client(api_client: APIClient, user: User) -> APIClient:
    """Authenticates with a real access token, not force_authenticate, to exercise SimpleJWT."""
    api_client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return api_client


@pytest.fixture
def client_for(db: None) -> Callable[[User], APIClient]:
    """Makes an APIClient authenticated as a given user: ``client_for(user)``."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(user))
        return client

    return make
