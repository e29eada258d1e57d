"""Known traps of this stack, each with a test (issue 5, "Known traps").

(a) redis-py 8 defaults ``socket_timeout`` to 5 s, the same as channels-redis's blocking
    read (``BZPOPMIN`` with a 5 s timeout): an idle socket's read times out and the
    consumer dies with 1011. The settings raise the timeout; an idle socket survives.
(b) The channel layer's default capacity (100 per channel) silently drops group
    messages in a burst: 1,000 messages into a room of 20 sockets must all arrive, in
    order, straight from the layer. Both layers: the in-memory one in the SQLite run,
    channels-redis in the PostgreSQL and Redis run.
(c) After a Redis restart without persistence the layer's group memberships are gone,
    and open sockets hear nothing until they re-join: the consumers re-subscribe on
    every presence refresh, and the fault-injection tests (issue 5, "Faults") restart a
    real ``redis-server`` under open sockets and check that broadcasts come back.
(d) DRF's cursor pagination passes a decoded cursor position to the database: a forged
    cursor or ``next`` link must answer 400, never 500. The same for the history's
    ``before``/``after`` links.
(e) A deeply nested JSON body exhausts the parser's recursion: 400, never 500.
(f) The anonymous throttles count per client address; with ``NUM_PROXIES`` unset (0)
    ``X-Forwarded-For`` is not trusted, so a client cannot dodge the register and login
    throttles by sending a new one with each request.
"""

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.db import transaction
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from messaging import consumers
from messaging.services import message_create
from rooms.models import Room
from tests.factories import MessageFactory, RoomFactory, UserFactory
from tests.messaging.conftest import TIMEOUT, communicator_for, receive_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IDLE_SECONDS = 7.0  # longer than one blocking read of channels-redis (5 s)
BURST = 1_000
SOCKETS = 20


def base_settings(**env: str) -> dict[str, Any]:
    """``CHANNEL_LAYERS`` and ``REST_FRAMEWORK`` as ``config.settings.base`` makes them."""
    code = (
        "import json, config.settings.base as s; "
        "print(json.dumps({'layers': s.CHANNEL_LAYERS, 'rest': s.REST_FRAMEWORK}, default=repr))"
    )
    environment = {"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "x", **env}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout))


async def open_socket(room: Room, user: User) -> WebsocketCommunicator:
    socket = communicator_for(room.pk, user)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return socket


@pytest.fixture
async def sockets() -> AsyncIterator[list[WebsocketCommunicator]]:
    opened: list[WebsocketCommunicator] = []
    yield opened
    for socket in opened:
        await socket.disconnect()


# (a) Redis socket timeout ----------------------------------------------------------


def test_the_redis_read_timeout_is_well_above_the_layers_blocking_read() -> None:
    layer = base_settings(REDIS_URL="redis://127.0.0.1:6379/0")["layers"]["default"]

    (host,) = layer["CONFIG"]["hosts"]

    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert host["socket_timeout"] >= 2 * RedisChannelLayer.brpop_timeout


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_url")
async def test_a_socket_idle_on_redis_stays_open_and_still_receives(
    room: Room, user: User, sockets: list[WebsocketCommunicator]
) -> None:
    socket = await open_socket(room, user)
    sockets.append(socket)

    await asyncio.sleep(IDLE_SECONDS)  # the consumer's layer read times out meanwhile
    await database_sync_to_async(message_create)(room=room, author=user, body="still here?")

    frame = await receive_until(socket, "message.new")
    assert frame["message"]["body"] == "still here?"
    await socket.send_json_to({"type": "ping"})
    assert await receive_until(socket, "pong") == {"type": "pong"}


# (b) Channel layer capacity -------------------------------------------------------


@pytest.mark.parametrize("redis", [False, True], ids=["in-memory", "redis"])
def test_the_layer_capacity_holds_a_burst(redis: bool) -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:6379/0"} if redis else {}

    layer = base_settings(**env)["layers"]["default"]

    assert layer["CONFIG"]["capacity"] >= 5 * BURST


def send_burst(room: Room, author: User) -> None:
    # One transaction: every broadcast leaves at commit, back to back.
    with transaction.atomic():
        for n in range(BURST):
            message_create(room=room, author=author, body=f"burst {n}")


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_1000_messages_reaches_20_sockets_whole_and_in_order(
    settings: Settings, sockets: list[WebsocketCommunicator]
) -> None:
    settings.CHAT_MESSAGE_RATE = 1_000_000.0
    settings.CHAT_MESSAGE_BURST = 1_000_000
    users = await database_sync_to_async(UserFactory.create_batch)(SOCKETS)
    room = await database_sync_to_async(RoomFactory.create)(owner=users[0], members=users[1:])
    for user in users:
        sockets.append(await open_socket(room, user))

    # Reading the gaps from the database would hide a layer that drops: count those reads.
    with mock.patch.object(
        consumers, "socket_changes_after", wraps=consumers.socket_changes_after
    ) as gap_reads:
        await database_sync_to_async(send_burst)(room, users[0])
        seen = await asyncio.gather(*(receive_seqs(socket, BURST) for socket in sockets))

    assert all(seqs == list(range(1, BURST + 1)) for seqs in seen)
    assert gap_reads.call_count == 0, "the layer dropped broadcasts; sockets read the gaps"


async def receive_seqs(socket: WebsocketCommunicator, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        frame = await receive_until(socket, "message.new")
        seqs.append(frame["message"]["seq"])
    return seqs


# (d) Forged cursors and links ---------------------------------------------------


def cursor(**fields: str) -> str:
    """A cursor as DRF encodes them: base64 of a query string (o=offset, r=reverse, p=position)."""
    return base64.b64encode(urlencode(fields).encode()).decode()


FORGED_CURSORS = [
    "garbage",
    "a",
    cursor(o="-1"),
    cursor(r="maybe", p="2020-01-01 00:00:00+00:00"),
    cursor(p="not-a-date"),
    cursor(p="2020-13-45 00:00:00+00:00"),
    cursor(p="2020-01-01T00:00:00+25:00"),
    cursor(p="\x00"),
    # Well-formed datetimes that overflow on the way to the database: a 500 in DRF alone.
    cursor(p="9999-12-31T23:59:59-23:59"),
    cursor(p="0001-01-01T00:00:00+01:00"),
]
# Cursors that name no position, or a real instant in an odd zone, read a page as DRF
# would; PostgreSQL refuses offsets beyond 15:59, so the position must reach it in UTC.
HARMLESS_CURSORS = [
    "!!!",  # base64 of nothing
    "Zm9vYmFy",  # base64 of "foobar": no cursor fields
    cursor(p="2020-01-01T00:00:00-20:00"),
    cursor(p="2020-01-01T00:00:00+18:30", r="1"),
]


@pytest.fixture
def crowded_room(user: User) -> Room:
    """A room of 3 members, with 3 more rooms beside it, so lists have a next page."""
    room = RoomFactory.create(owner=user, members=UserFactory.create_batch(2))
    RoomFactory.create_batch(3)
    return room


@pytest.mark.django_db
@pytest.mark.parametrize("forged", FORGED_CURSORS)
@pytest.mark.parametrize("listing", ["rooms", "members"])
def test_a_forged_cursor_is_a_400_not_a_500(
    auth_client: APIClient, crowded_room: Room, listing: str, forged: str
) -> None:
    path = "/api/v1/rooms/" if listing == "rooms" else f"/api/v1/rooms/{crowded_room.pk}/members/"

    response = auth_client.get(path, {"cursor": forged})

    assert response.status_code == 400, response.content
    assert "cursor" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("odd", HARMLESS_CURSORS)
@pytest.mark.parametrize("listing", ["rooms", "members"])
def test_a_cursor_naming_a_real_instant_reads_a_page(
    auth_client: APIClient, crowded_room: Room, listing: str, odd: str
) -> None:
    path = "/api/v1/rooms/" if listing == "rooms" else f"/api/v1/rooms/{crowded_room.pk}/members/"

    response = auth_client.get(path, {"cursor": odd})

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"next", "previous", "results"}


@pytest.mark.django_db
@pytest.mark.parametrize("listing", ["rooms", "members"])
def test_a_tampered_next_link_is_a_400_and_an_untouched_one_works(
    auth_client: APIClient, crowded_room: Room, listing: str
) -> None:
    path = "/api/v1/rooms/" if listing == "rooms" else f"/api/v1/rooms/{crowded_room.pk}/members/"
    first = auth_client.get(path, {"limit": 2}).json()
    next_url = first["next"]
    assert next_url is not None
    token = parse_qs(urlsplit(next_url).query)["cursor"][0]
    decoded = base64.b64decode(token).decode()
    position = parse_qs(decoded)["p"][0]

    def get(forged: str) -> int:
        return auth_client.get(path, {"limit": 2, "cursor": forged}).status_code

    untouched = auth_client.get(next_url)

    assert untouched.status_code == 200
    assert untouched.json()["results"]
    assert get(token[::-1]) == 400
    assert get(cursor(p=position[:-6] + "+99:00")) == 400
    assert get(cursor(p="9999-12-31 23:59:59.999999-23:59")) == 400  # overflows in UTC
    assert get(cursor(p=position[:-6] + "-23:59")) == 200  # a real instant, in another zone


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "before=abc",
        "after=abc",
        "before=-1",
        "after=9223372036854775808",
        "before=1e3",
        "after=1.5",
        "after=%00",
        "before=%EF%BF%BD",
        "before=5&after=1",
        "limit=0",
        "limit=-5",
        "limit=abc",
    ],
)
def test_forged_history_positions_are_400(auth_client: APIClient, room: Room, query: str) -> None:
    MessageFactory.create_batch(3, room=room)

    response = auth_client.get(f"/api/v1/rooms/{room.pk}/messages/?{query}")

    assert response.status_code == 400, response.content


@pytest.mark.django_db
def test_a_history_next_link_with_a_forged_position_is_400(
    auth_client: APIClient, room: Room
) -> None:
    MessageFactory.create_batch(5, room=room)
    next_url = auth_client.get(f"/api/v1/rooms/{room.pk}/messages/", {"limit": 2}).json()["next"]
    assert "before=" in next_url

    forged = [
        next_url.replace("before=", "before=x"),
        next_url + "&after=1",
        next_url.replace("before=", "before=-"),
        next_url.replace("before=", "before=99999999999999999999999"),
    ]

    assert auth_client.get(next_url).status_code == 200
    assert [auth_client.get(url).status_code for url in forged] == [400] * len(forged)


# (e) Deep nesting ----------------------------------------------------------------


def nested_body(depth: int) -> bytes:
    return (b'{"a":' * depth) + b"1" + (b"}" * depth)


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/register/",
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh/",
        "/api/v1/rooms/",
        "/api/v1/rooms/{room}/messages/",
        "/api/v1/rooms/{room}/members/",
        "/api/v1/rooms/{room}/read/",
    ],
)
def test_deeply_nested_json_bodies_are_400(
    auth_client: APIClient, room: Room, path: str, depth: int
) -> None:
    for body in (nested_body(depth), b"[" * depth + b"]" * depth):
        response = auth_client.post(
            path.format(room=room.pk), body, content_type="application/json"
        )
        assert response.status_code == 400, response.content
        assert "detail" in response.json()


@pytest.mark.django_db
def test_deeply_nested_json_in_a_patch_is_400(auth_client: APIClient, room: Room) -> None:
    for path in (f"/api/v1/rooms/{room.pk}/", "/api/v1/users/me/"):
        response = auth_client.patch(path, nested_body(50_000), content_type="application/json")
        assert response.status_code == 400, response.content


# (f) The anonymous throttle and X-Forwarded-For -----------------------------------


def test_num_proxies_defaults_to_0() -> None:
    assert base_settings()["rest"]["NUM_PROXIES"] == 0


@pytest.fixture
def low_rates(settings: Settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "NUM_PROXIES": 0,
        "DEFAULT_THROTTLE_RATES": {"register": "2/hour", "login": "3/minute"},
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("low_rates")
def test_a_new_x_forwarded_for_on_each_register_does_not_dodge_the_throttle() -> None:
    client = APIClient(REMOTE_ADDR="203.0.113.10")

    codes = [
        client.post(
            "/api/v1/auth/register/",
            {"username": f"dodger{n}", "password": "pale-violet-tractor-81"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]

    assert codes == [201, 201, 429, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("low_rates")
def test_a_new_x_forwarded_for_on_each_login_does_not_dodge_the_throttle(user: User) -> None:
    client = APIClient(REMOTE_ADDR="203.0.113.11")

    codes = [
        client.post(
            "/api/v1/auth/token/",
            {"username": user.username, "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.{n}",
        ).status_code
        for n in range(5)
    ]

    assert codes == [401, 401, 401, 429, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("low_rates")
def test_behind_one_proxy_the_throttle_counts_the_address_the_proxy_saw(
    settings: Settings,
) -> None:
    # With DJANGO_NUM_PROXIES=1 the last X-Forwarded-For entry is the client: the one
    # the proxy appended, which the client cannot choose.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")

    def register(n: int, forwarded: str) -> int:
        return proxy.post(
            "/api/v1/auth/register/",
            {"username": f"behind{n}", "password": "pale-violet-tractor-81"},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    same_client = [register(n, f"198.51.100.{n}, 192.0.2.7") for n in range(3)]
    other_client = register(9, "192.0.2.8")

    assert same_client == [201, 201, 429]
    assert other_client == 201
