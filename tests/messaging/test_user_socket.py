"""The user socket, ``/ws/``: one socket per device for every room of its user (API.md,
WebSocket: ``/ws/``), through the real ASGI stack with ``WebsocketCommunicator``."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from messaging import sockets
from messaging.models import Message
from messaging.services import message_create, message_delete, message_update
from realtime import publish
from realtime.hub import get_hub
from rooms.models import Membership, Room
from rooms.services import membership_remove, room_delete, room_mark_read
from tests.conftest import bearer
from tests.factories import MessageFactory, RoomFactory, UserFactory
from tests.messaging.conftest import (
    ORIGIN,
    TIMEOUT,
    Connect,
    close_code,
    close_code_after_open,
    receive_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

OpenUserSocket = Callable[[User], Awaitable[WebsocketCommunicator]]


def user_socket(user: User | None, *, path: str = "/ws/") -> WebsocketCommunicator:
    from config.asgi import application

    token = str(AccessToken.for_user(user)) if user else None
    return WebsocketCommunicator(
        application, f"{path}?token={token}" if token else path, headers=[ORIGIN]
    )


@pytest.fixture
async def open_user_socket() -> AsyncIterator[OpenUserSocket]:
    """Opens user sockets that have read their ``hello``; closes them after."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(user: User) -> WebsocketCommunicator:
        communicator = user_socket(user)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        hello = await communicator.receive_json_from(timeout=TIMEOUT)
        assert hello["type"] == "hello", hello
        communicator.hello = hello  # type: ignore[attr-defined]
        opened.append(communicator)
        return communicator

    yield open_socket
    for communicator in opened:
        await communicator.disconnect()


async def send(room: Room, user: User, body: str) -> Message:
    result = await database_sync_to_async(message_create)(room=room, author=user, body=body)
    return result.message


async def frames_until(
    socket: WebsocketCommunicator, done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every frame up to and including the first for which ``done`` holds."""
    seen = []
    while True:
        frame = await socket.receive_json_from(timeout=TIMEOUT)
        seen.append(frame)
        if done(frame):
            return seen


def messages_of(frames: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(f["room"], f["message"]["body"]) for f in frames if f["type"] == "message.new"]


# Opening ----------------------------------------------------------------------------


async def test_hello_lists_every_joined_room_with_its_positions_and_counts(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    mine = await database_sync_to_async(RoomFactory.create)(owner=user)
    theirs = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    await database_sync_to_async(RoomFactory.create)(owner=other_user)  # not joined
    await send(mine, user, "mine")
    for body in ("a", "b", "c"):
        await send(theirs, other_user, body)
    await database_sync_to_async(room_mark_read)(room=theirs, user=user, seq=1)
    await send(theirs, user, "d")  # sending reads up to it
    await send(theirs, other_user, "e")

    socket = await open_user_socket(user)

    assert socket.hello["user"] == {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
    }
    assert socket.hello["rooms"] == [
        {"room": theirs.pk, "last_seq": 5, "last_rev": 5, "unread_count": 1, "mention_count": 0},
        {"room": mine.pk, "last_seq": 1, "last_rev": 1, "unread_count": 0, "mention_count": 0},
    ]


async def test_a_user_in_no_room_gets_an_empty_list(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    socket = await open_user_socket(user)

    assert socket.hello["rooms"] == []


async def test_the_path_without_its_slash_and_the_bearer_header_work_too(user: User) -> None:
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws", headers=[ORIGIN, (b"authorization", bearer(user).encode())]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    await communicator.disconnect()


async def test_no_token_or_a_bad_one_closes_with_4401(user: User) -> None:
    assert await close_code(user_socket(None)) == 4401
    assert await close_code(user_socket(None, path="/ws/?token=garbage")) == 4401


async def test_an_inactive_user_is_refused_with_4401(user: User) -> None:
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)

    assert await close_code(user_socket(user)) == 4401


async def test_a_foreign_origin_is_refused(user: User) -> None:
    from config.asgi import application

    token = AccessToken.for_user(user)
    communicator = WebsocketCommunicator(
        application, f"/ws/?token={token}", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected
    await communicator.disconnect()


@override_settings(CHAT_MAX_SOCKETS_PER_USER=2)
async def test_room_and_user_sockets_count_together_against_the_socket_limit(
    connect: Connect, open_user_socket: OpenUserSocket, room: Room, user: User
) -> None:
    await connect(room, user)
    await open_user_socket(user)

    assert await close_code(user_socket(user)) == 4429


async def test_a_frame_over_16_kib_closes_with_4413(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    socket = await open_user_socket(user)

    await socket.send_to(text_data='{"type":"ping","pad":"' + "é" * 8_200 + '"}')

    assert await close_code_after_open(socket) == 4413


async def test_the_socket_closes_with_4401_when_its_token_expires(user: User) -> None:
    from config.asgi import application

    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=1))
    communicator = WebsocketCommunicator(application, f"/ws/?token={token}", headers=[ORIGIN])
    await communicator.connect(timeout=TIMEOUT)
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"

    assert await close_code_after_open(communicator) == 4401


async def test_an_auth_frame_renews_the_socket(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    socket = await open_user_socket(user)

    await socket.send_json_to({"type": "auth", "token": str(AccessToken.for_user(user))})

    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "auth.ok"
    await socket.send_json_to({"type": "auth", "token": "garbage"})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"]) == ("error", "validation_error")


# The rooms' events ------------------------------------------------------------------


async def test_every_joined_rooms_messages_arrive_naming_their_room(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    first = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    second = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    elsewhere = await database_sync_to_async(RoomFactory.create)(owner=other_user)
    socket = await open_user_socket(user)

    await send(elsewhere, other_user, "not for you")
    await send(first, other_user, "one")
    await send(second, other_user, "two")

    frames = await frames_until(socket, lambda f: f.get("message", {}).get("body") == "two")
    assert messages_of(frames) == [(first.pk, "one"), (second.pk, "two")]


async def test_edits_and_deletions_arrive_in_rev_order(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    socket = await open_user_socket(user)

    message = await send(room, other_user, "draft")
    await database_sync_to_async(message_update)(message=message, body="final")
    await database_sync_to_async(message_delete)(message=message)

    new = await receive_until(socket, "message.new")
    updated = await receive_until(socket, "message.updated")
    deleted = await receive_until(socket, "message.deleted")
    assert (new["room"], new["message"]["rev"]) == (room.pk, 1)
    assert (updated["room"], updated["message"]["body"], updated["message"]["rev"]) == (
        room.pk,
        "final",
        2,
    )
    assert deleted == {
        "type": "message.deleted",
        "message_id": message.pk,
        "room": room.pk,
        "seq": 1,
        "rev": 3,
    }


async def test_changes_committed_while_the_socket_opens_are_not_lost(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    real = sockets.socket_user_rooms

    def racing(**kwargs: Any) -> Any:
        positions = real(**kwargs)
        # Committed after the positions were read, before the socket joined the room's
        # group: its broadcast reaches nobody here.
        message_create(room=room, author=other_user, body="raced")
        return positions

    with mock.patch("messaging.user_consumer.socket_user_rooms", racing):
        socket = await open_user_socket(user)

    assert socket.hello["rooms"][0]["last_rev"] == 0
    new = await receive_until(socket, "message.new")
    assert (new["room"], new["message"]["body"], new["message"]["rev"]) == (room.pk, "raced", 1)


async def test_a_dropped_broadcast_is_filled_from_the_database_in_order(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    socket = await open_user_socket(user)
    real = publish._send_to_group
    dropped: list[str] = []

    async def dropping(group: str, event: Any) -> None:
        if event["type"] == "message.changes" and not dropped:
            dropped.append(group)
            return  # the layer lost it
        await real(group, event)

    with mock.patch.object(publish, "_send_to_group", dropping):
        await send(room, other_user, "lost")
        await send(room, other_user, "after")

    frames = await frames_until(socket, lambda f: f.get("message", {}).get("body") == "after")
    assert messages_of(frames) == [(room.pk, "lost"), (room.pk, "after")]
    assert dropped


# Rooms coming and going -----------------------------------------------------------------


async def test_a_room_joined_elsewhere_is_announced_and_its_messages_follow(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user)
    socket = await open_user_socket(user)

    response = await database_sync_to_async(_client_for(user).post)(
        f"/api/v1/rooms/{room.pk}/join/", format="json"
    )
    assert response.status_code in (200, 201), response.content
    joined = await receive_until(socket, "room.joined")
    await send(room, other_user, "welcome")

    assert (joined["room"]["id"], joined["room"]["is_member"]) == (room.pk, True)
    new = await receive_until(socket, "message.new")
    assert (new["room"], new["message"]["body"]) == (room.pk, "welcome")


async def test_being_added_by_an_owner_is_a_room_joined(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(
        owner=other_user, visibility=Room.Visibility.PRIVATE
    )
    socket = await open_user_socket(user)

    response = await database_sync_to_async(_client_for(other_user).post)(
        f"/api/v1/rooms/{room.pk}/members/", {"username": user.username}, format="json"
    )
    assert response.status_code == 201, response.content

    joined = await receive_until(socket, "room.joined")
    assert (joined["room"]["id"], joined["room"]["role"]) == (room.pk, "member")


async def test_leaving_and_being_removed_are_room_left_and_nothing_of_the_room_follows(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    left = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    removed = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    kept = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    socket = await open_user_socket(user)

    response = await database_sync_to_async(_client_for(user).post)(
        f"/api/v1/rooms/{left.pk}/leave/", format="json"
    )
    assert response.status_code == 204
    await database_sync_to_async(membership_remove)(room=removed, user_id=user.pk)
    await send(left, other_user, "gone")
    await send(removed, other_user, "gone too")
    await send(kept, other_user, "still here")

    frames = await frames_until(socket, lambda f: f.get("message", {}).get("body") == "still here")
    assert [f for f in frames if f["type"] == "room.left"] == [
        {"type": "room.left", "room": left.pk, "reason": "left"},
        {"type": "room.left", "room": removed.pk, "reason": "removed"},
    ]
    assert messages_of(frames) == [(kept.pk, "still here")]


async def test_a_deleted_room_sends_room_deleted_then_room_left(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    room_id = room.pk
    socket = await open_user_socket(user)

    await database_sync_to_async(room_delete)(room=room)

    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        "type": "room.deleted",
        "room": room_id,
    }
    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        "type": "room.left",
        "room": room_id,
        "reason": "deleted",
    }
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "pong"  # still open


async def test_a_removal_whose_event_was_lost_is_caught_by_the_hubs_recheck(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    socket = await open_user_socket(user)
    await Membership.objects.filter(room=room, user=user).adelete()  # no event at all

    await get_hub().maintain()

    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        "type": "room.left",
        "room": room.pk,
        "reason": "removed",
    }


async def test_a_deactivated_user_is_closed_by_the_hubs_recheck(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    socket = await open_user_socket(user)
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)

    await get_hub().maintain()

    assert await close_code_after_open(socket) == 4401


async def test_signing_out_everywhere_closes_the_socket_with_4401(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    from rooms.events import publish_sync

    socket = await open_user_socket(user)
    await database_sync_to_async(publish_sync)(
        [(f"user.{user.pk}", {"type": "user.signed_out", "reason": "signed out"})]
    )

    assert await close_code_after_open(socket) == 4401


async def test_room_updated_shows_the_users_own_fields(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    await send(room, other_user, "unread")
    socket = await open_user_socket(user)

    response = await database_sync_to_async(_client_for(other_user).patch)(
        f"/api/v1/rooms/{room.pk}/", {"topic": "new topic"}, format="json"
    )
    assert response.status_code == 200

    updated = await receive_until(socket, "room.updated")
    assert updated["room"]["topic"] == "new topic"
    assert (updated["room"]["role"], updated["room"]["unread_count"]) == ("member", 1)


# Read markers -----------------------------------------------------------------------------


async def test_a_read_frame_reaches_every_device_of_the_user_as_read_updated(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    room = await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
    for body in ("a", "b", "c"):
        await send(room, other_user, body)
    phone, laptop = await open_user_socket(user), await open_user_socket(user)

    await phone.send_json_to({"type": "read", "room": room.pk, "seq": 2})

    expected = {"type": "read.updated", "room": room.pk, "seq": 2, "unread_count": 1}
    for device in (phone, laptop):
        frame = await receive_until(device, "read.updated")
        assert frame == {**expected, "mention_count": 0}
    assert (await Membership.objects.aget(room=room, user=user)).last_read_seq == 2


# Client frames -----------------------------------------------------------------------------


async def test_sending_with_a_room_acks_then_broadcasts(
    open_user_socket: OpenUserSocket, user: User, room: Room
) -> None:
    socket = await open_user_socket(user)

    await socket.send_json_to(
        {"type": "message.send", "room": room.pk, "body": "hi", "client_id": "c1"}
    )

    ack = await socket.receive_json_from(timeout=TIMEOUT)
    new = await socket.receive_json_from(timeout=TIMEOUT)
    assert (ack["type"], ack["client_id"], ack["message"]["body"]) == ("message.ack", "c1", "hi")
    assert new == {"type": "message.new", "room": room.pk, "message": ack["message"]}
    assert await Message.objects.filter(room=room).acount() == 1


async def test_a_frame_for_a_room_that_is_not_the_users_is_refused_and_the_socket_stays(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    public = await database_sync_to_async(RoomFactory.create)(owner=other_user)
    private = await database_sync_to_async(RoomFactory.create)(
        owner=other_user, visibility=Room.Visibility.PRIVATE
    )
    socket = await open_user_socket(user)

    for room_id, code in (
        (public.pk, "forbidden"),
        (private.pk, "not_found"),
        (10**12, "not_found"),
    ):
        for frame in (
            {"type": "message.send", "room": room_id, "body": "x", "client_id": "c9"},
            {"type": "typing", "room": room_id, "is_typing": True, "client_id": "c9"},
            {"type": "read", "room": room_id, "seq": 1, "client_id": "c9"},
        ):
            await socket.send_json_to(frame)
            error = await socket.receive_json_from(timeout=TIMEOUT)
            assert (error["type"], error["code"], error["room"], error["client_id"]) == (
                "error",
                code,
                room_id,
                "c9",
            ), frame
    assert await Message.objects.acount() == 0
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "pong"


@pytest.mark.parametrize("room", [None, "7", 0, -1, True, 1.5, [1]], ids=repr)
async def test_a_frame_without_a_valid_room_is_a_validation_error(
    open_user_socket: OpenUserSocket, user: User, room: Any
) -> None:
    socket = await open_user_socket(user)
    frame: dict[str, Any] = {"type": "message.send", "body": "x", "client_id": "c1"}
    if room is not None:
        frame["room"] = room

    await socket.send_json_to(frame)

    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["code"], error["client_id"]) == ("validation_error", "c1")
    assert "room" in error["errors"]


# Watching ----------------------------------------------------------------------------------


async def test_typing_and_presence_come_only_for_watched_rooms(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    watched = await database_sync_to_async(RoomFactory.create)(owner=user, members=[other_user])
    unwatched = await database_sync_to_async(RoomFactory.create)(owner=user, members=[other_user])
    socket = await open_user_socket(user)
    await socket.send_json_to({"type": "watch", "room": watched.pk})
    watching = await socket.receive_json_from(timeout=TIMEOUT)
    assert watching == {
        "type": "watching",
        "room": watched.pk,
        "online": [socket.hello["user"]],
        "last_seq": 0,
        "last_rev": 0,
    }

    other = await open_user_socket(other_user)  # comes online: presence in both rooms
    online = await receive_until(socket, "presence")
    assert (online["room"], online["user"]["id"], online["status"]) == (
        watched.pk,
        other_user.pk,
        "online",
    )
    for room in (unwatched, watched):
        await other.send_json_to({"type": "typing", "room": room.pk, "is_typing": True})
    typing = await receive_until(socket, "typing")
    assert (typing["room"], typing["user"]["id"], typing["is_typing"]) == (
        watched.pk,
        other_user.pk,
        True,
    )
    assert await socket.receive_nothing(timeout=0.3)

    await socket.send_json_to({"type": "unwatch", "room": watched.pk})
    assert await socket.receive_json_from(timeout=TIMEOUT) == {
        "type": "unwatched",
        "room": watched.pk,
    }
    await asyncio.sleep(1.1)  # typing reaches a room at most once a second per user
    await other.send_json_to({"type": "typing", "room": watched.pk, "is_typing": False})
    await send(watched, other_user, "still a member")
    new = await socket.receive_json_from(timeout=TIMEOUT)
    assert (new["type"], new["message"]["body"]) == ("message.new", "still a member")


async def test_watching_lists_who_is_online_in_the_room(
    connect: Connect, open_user_socket: OpenUserSocket, room: Room, user: User, other_user: User
) -> None:
    await database_sync_to_async(Membership.objects.create)(room=room, user=other_user)
    await connect(room, other_user)  # online by a room socket
    socket = await open_user_socket(user)

    await socket.send_json_to({"type": "watch", "room": room.pk})

    watching = await receive_until(socket, "watching")
    assert [u["id"] for u in watching["online"]] == sorted([user.pk, other_user.pk])


async def test_watching_a_public_channel_as_a_non_member_brings_its_messages_until_unwatched(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    channel = await database_sync_to_async(RoomFactory.create)(owner=other_user)
    await send(channel, other_user, "before")
    socket = await open_user_socket(user)

    await socket.send_json_to({"type": "watch", "room": channel.pk})
    watching = await socket.receive_json_from(timeout=TIMEOUT)
    assert (watching["type"], watching["last_seq"], watching["last_rev"]) == ("watching", 1, 1)
    await send(channel, other_user, "while watching")
    new = await socket.receive_json_from(timeout=TIMEOUT)
    assert (new["type"], new["room"], new["message"]["body"]) == (
        "message.new",
        channel.pk,
        "while watching",
    )

    await socket.send_json_to({"type": "unwatch", "room": channel.pk})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "unwatched"
    await send(channel, other_user, "after")
    assert await socket.receive_nothing(timeout=0.3)
    # Watching is no membership: sending there is still forbidden.
    await socket.send_json_to({"type": "message.send", "room": channel.pk, "body": "x"})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"


async def test_a_private_room_of_others_cannot_be_watched(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    secret = await database_sync_to_async(RoomFactory.create)(
        owner=other_user, visibility=Room.Visibility.PRIVATE
    )
    socket = await open_user_socket(user)

    await socket.send_json_to({"type": "watch", "room": secret.pk})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    await send(secret, other_user, "secret")

    assert (error["code"], error["room"]) == ("not_found", secret.pk)
    assert await socket.receive_nothing(timeout=0.3)


async def test_at_most_20_rooms_are_watched_at_once(
    open_user_socket: OpenUserSocket, user: User
) -> None:
    rooms = await database_sync_to_async(RoomFactory.create_batch)(21, owner=user)
    socket = await open_user_socket(user)
    for room in rooms[:20]:
        await socket.send_json_to({"type": "watch", "room": room.pk})
        assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "watching"

    await socket.send_json_to({"type": "watch", "room": rooms[20].pk})
    error = await socket.receive_json_from(timeout=TIMEOUT)
    await socket.send_json_to({"type": "watch", "room": rooms[0].pk})  # again: no new one
    again = await socket.receive_json_from(timeout=TIMEOUT)

    assert (error["code"], error["room"]) == ("validation_error", rooms[20].pk)
    assert again["type"] == "watching"


# Presence by user ----------------------------------------------------------------------


async def test_a_user_is_online_while_any_socket_of_theirs_is_open(
    connect: Connect, open_user_socket: OpenUserSocket, room: Room, user: User, member: User
) -> None:
    watcher = await connect(room, user)
    device = await open_user_socket(member)
    online = await receive_until(watcher, "presence")
    assert (online["user"]["id"], online["status"]) == (member.pk, "online")

    room_socket = await connect(room, member)  # a second socket: nothing new
    await device.disconnect()  # one of two closed: still online
    assert await watcher.receive_nothing(timeout=0.3)

    await room_socket.disconnect()
    offline = await receive_until(watcher, "presence")
    assert (offline["user"]["id"], offline["status"]) == (member.pk, "offline")


@override_settings(CHAT_REFRESH_SECONDS=3600)
async def test_online_lists_hold_at_most_200_users(
    connect: Connect, open_user_socket: OpenUserSocket, room: Room, user: User
) -> None:
    from realtime.presence import get_presence_store

    others = await database_sync_to_async(UserFactory.create_batch)(210)
    await database_sync_to_async(Membership.objects.bulk_create)(
        [Membership(room=room, user=u) for u in others]
    )
    store = get_presence_store()
    for other in others:
        await store.connect(other.pk, f"elsewhere-{other.pk}")

    socket = await connect(room, user)
    device = await open_user_socket(user)
    await device.send_json_to({"type": "watch", "room": room.pk})
    watching = await receive_until(device, "watching")

    assert len(socket.hello["online"]) == 200
    assert len(watching["online"]) == 200


def _client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


async def test_messages_of_many_rooms_keep_each_rooms_order(
    open_user_socket: OpenUserSocket, user: User, other_user: User
) -> None:
    rooms = [
        await database_sync_to_async(RoomFactory.create)(owner=other_user, members=[user])
        for _ in range(3)
    ]
    socket = await open_user_socket(user)

    for n in range(5):
        for room in rooms:
            await database_sync_to_async(MessageFactory.create)(room=room, body=f"{n}")
            await send(room, other_user, f"sent {n}")

    revs: dict[int, list[int]] = {room.pk: [] for room in rooms}
    while any(len(room_revs) < 10 for room_revs in revs.values()):
        frame = await socket.receive_json_from(timeout=TIMEOUT)
        revs[frame["room"]].append(frame["message"]["rev"])
    # Factory messages are not broadcast: the gaps they leave are filled, in order.
    assert revs == {room.pk: list(range(1, 11)) for room in rooms}
    assert await socket.receive_nothing(timeout=0.6)  # and nothing twice
