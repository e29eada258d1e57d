from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.services import user_set_active
from config.asgi import application
from rooms.models import Room
from tests.factories import UserFactory
from tests.messaging.conftest import ORIGIN, TIMEOUT, Connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def short_lived_token(user: User, seconds: float) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def open_with_token(room: Room, token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, f"/ws/rooms/{room.pk}/?token={token}", headers=[ORIGIN]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return communicator


async def wait_for_close(communicator: WebsocketCommunicator, within: float) -> int | None:
    while True:
        output = await communicator.receive_output(timeout=within)
        if output["type"] == "websocket.close":
            await communicator.disconnect()
            return output.get("code")


async def test_a_socket_closes_with_4401_when_its_token_expires(room: Room, user: User) -> None:
    socket = await open_with_token(room, short_lived_token(user, 1.5))

    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}

    assert await wait_for_close(socket, within=5) == 4401


async def test_an_auth_frame_with_a_fresh_token_keeps_the_socket_open(
    room: Room, user: User
) -> None:
    socket = await open_with_token(room, short_lived_token(user, 1.5))

    await socket.send_json_to({"type": "auth", "token": short_lived_token(user, 600)})
    ok = await socket.receive_json_from(timeout=TIMEOUT)

    assert ok["type"] == "auth.ok"
    assert ok["expires_at"].endswith("Z")
    assert await socket.receive_nothing(timeout=2.5)  # past the first token's expiry
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.parametrize("kind", ["garbage", "other-user", "expired"])
async def test_an_auth_frame_with_a_bad_token_is_refused_and_changes_nothing(
    room: Room, user: User, kind: str
) -> None:
    socket = await open_with_token(room, short_lived_token(user, 600))
    if kind == "garbage":
        token = "x.y.z"
    elif kind == "other-user":
        other = await database_sync_to_async(UserFactory.create)()
        token = str(AccessToken.for_user(other))
    else:
        token = short_lived_token(user, -1)

    await socket.send_json_to({"type": "auth", "token": token})

    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"]) == ("error", "validation_error")
    # Field errors, as every other validation_error has them.
    assert list(error["errors"]) == ["token"]
    assert isinstance(error["errors"]["token"], list)
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    await socket.disconnect()


async def test_deactivating_a_user_closes_their_sockets_with_4401(
    connect: Connect, room: Room, user: User
) -> None:
    member = await database_sync_to_async(UserFactory.create)()
    await room.memberships.acreate(user=member)
    owner_socket = await connect(room, user)
    member_socket = await connect(room, member)
    online = await receive_until(owner_socket, "presence")

    await database_sync_to_async(user_set_active)(user=member, is_active=False)

    assert await wait_for_close(member_socket, within=TIMEOUT) == 4401
    offline = await receive_until(owner_socket, "presence")
    assert (online["status"], offline["status"]) == ("online", "offline")
    assert offline["user"]["id"] == member.pk


@pytest.mark.parametrize(("change", "code"), [("removed", 4403), ("deactivated", 4401)])
async def test_an_auth_frame_re_checks_the_socket_and_closes_it_if_its_user_may_not_stay(
    connect: Connect, room: Room, change: str, code: int
) -> None:
    member = await database_sync_to_async(UserFactory.create)()
    await room.memberships.acreate(user=member)
    socket = await connect(room, member)
    fresh = short_lived_token(member, 600)  # minted before the change, still valid
    # Straight in the database: no broadcast, as when the channel layer lost it.
    if change == "removed":
        await room.memberships.filter(user=member).adelete()
    else:
        await User.objects.filter(pk=member.pk).aupdate(is_active=False)

    await socket.send_json_to({"type": "auth", "token": fresh})

    output = await socket.receive_output(timeout=TIMEOUT)
    assert (output["type"], output.get("code")) == ("websocket.close", code), output
