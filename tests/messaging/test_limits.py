"""API.md "Limits" on a socket: frames, typing, socket counts, and changes that share the
send limit (edits, room updates). The transport's own limits (unsent data, pings,
oversized frames) need a real daphne: tests/e2e/test_limits.py."""

import asyncio
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from config.asgi import application
from messaging.models import Message
from rooms.models import Room
from tests.conftest import bearer
from tests.factories import MessageFactory
from tests.messaging.conftest import (
    ORIGIN,
    TIMEOUT,
    Connect,
    close_code,
    communicator_for,
    receive_until,
    ws_path,
)

pytestmark = pytest.mark.django_db(transaction=True)


# Frames ------------------------------------------------------------------------------


@override_settings(CHAT_FRAME_RATE=0.5, CHAT_FRAME_BURST=3)
async def test_a_frame_over_the_socket_limit_is_refused_at_once_and_not_stored(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    for _ in range(3):
        await socket.send_json_to({"type": "ping"})
        assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "pong"

    with mock.patch("messaging.consumers.get_writer") as writer:
        await socket.send_json_to({"type": "message.send", "body": "hi", "client_id": "c-9"})
        refused = await socket.receive_json_from(timeout=TIMEOUT)

    assert refused["type"] == "error"
    assert refused["code"] == "rate_limited"
    assert refused["client_id"] == "c-9"
    assert 0 < refused["retry_after"] <= 2
    writer.assert_not_called()  # never reached the writer, let alone the database
    assert await Message.objects.filter(room=room).acount() == 0


@override_settings(CHAT_FRAME_RATE=0.5, CHAT_FRAME_BURST=2, CHAT_FLOOD_CLOSE_FRAMES=5)
async def test_a_socket_that_keeps_flooding_is_closed_with_4429(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    for _ in range(2 + 5):
        await socket.send_to(text_data="not json")

    answers = []
    while True:
        output = await socket.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            break
        answers.append(output["text"])
    assert output["code"] == 4429
    assert output.get("reason")
    # Two handled (invalid_json), then refused until the ceiling: 4 answered, the 5th closes.
    assert sum('"invalid_json"' in text for text in answers) == 2
    assert sum('"rate_limited"' in text for text in answers) == 4


async def typing_frames(socket: WebsocketCommunicator, within: float) -> list[dict[str, object]]:
    frames = []
    async with asyncio.timeout(within + 1):
        while not await socket.receive_nothing(timeout=within):
            frame = await socket.receive_json_from(timeout=TIMEOUT)
            if frame["type"] == "typing":
                frames.append(frame)
    return frames


async def test_typing_reaches_the_room_at_most_once_a_second_whatever_it_says(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    typist = await connect(room, user)
    other = await connect(room, member)

    for index in range(20):  # true, false, true, ... false
        await typist.send_json_to({"type": "typing", "is_typing": index % 2 == 0})

    first = await typing_frames(other, within=0.5)
    assert [frame["is_typing"] for frame in first] == [True]
    # The second's last word, false, arrives once the second is over, and nothing else.
    later = await typing_frames(other, within=1.2)
    assert [frame["is_typing"] for frame in later] == [False]


@override_settings(CHAT_FRAME_RATE=0.01, CHAT_FRAME_BURST=2, CHAT_FLOOD_CLOSE_FRAMES=3)
async def test_frames_queued_behind_a_flooding_close_are_never_handled(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    # All in the socket's queue before the consumer reads any: two handled, three
    # refused (the third closes the socket), then sends that must come to nothing.
    for _ in range(5):
        await socket.send_json_to({"type": "ping"})
    for index in range(5):
        await socket.send_json_to(
            {"type": "message.send", "body": "late", "client_id": f"l{index}"}
        )

    while (output := await socket.receive_output(timeout=TIMEOUT))["type"] != "websocket.close":
        pass
    assert output["code"] == 4429
    await asyncio.sleep(0.3)  # had any of the sends been handled, it would be stored by now
    assert await Message.objects.filter(room=room).acount() == 0


async def test_typing_counts_per_user_over_all_of_their_sockets(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    phone = await connect(room, user)
    laptop = await connect(room, user)
    other = await connect(room, member)

    for socket in (phone, laptop, phone, laptop):
        await socket.send_json_to({"type": "typing", "is_typing": True})

    first = await typing_frames(other, within=0.5)
    assert len(first) == 1


# Socket counts -------------------------------------------------------------------------


@override_settings(CHAT_MAX_SOCKETS_PER_USER=2)
async def test_a_user_past_the_socket_limit_gets_4429(
    connect: Connect, room: Room, user: User
) -> None:
    await connect(room, user)
    await connect(room, user)

    assert await close_code(communicator_for(room.pk, user)) == 4429


@override_settings(CHAT_MAX_SOCKETS_PER_ADDRESS=1)
async def test_an_address_past_the_socket_limit_gets_4429(
    room: Room, user: User, member: User
) -> None:
    def from_address(who: User) -> WebsocketCommunicator:
        socket = WebsocketCommunicator(
            application, ws_path(room.pk, str(AccessToken.for_user(who))), headers=[ORIGIN]
        )
        socket.scope["client"] = ["203.0.113.7", 50000]
        return socket

    first = from_address(user)
    assert (await first.connect(timeout=TIMEOUT))[0]
    assert (await first.receive_json_from(timeout=TIMEOUT))["type"] == "hello"

    assert await close_code(from_address(member)) == 4429

    await first.disconnect()
    # Its place is free again.
    again = from_address(member)
    assert (await again.connect(timeout=TIMEOUT))[0]
    assert (await again.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    await again.disconnect()


# room.updated ---------------------------------------------------------------------------


async def test_room_updated_gives_each_socket_its_own_view_without_reading_the_database(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    await database_sync_to_async(MessageFactory.create_batch)(3, room=room)
    owner_socket = await connect(room, user)
    member_socket = await connect(room, member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(member))
    read = await database_sync_to_async(client.post)(
        f"/api/v1/rooms/{room.pk}/read/", {"seq": 1}, format="json"
    )
    assert read.status_code == 204
    await asyncio.sleep(0.1)  # read.updated reaches the member's socket

    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=bearer(user))
    with mock.patch(
        "messaging.consumers.database_sync_to_async", side_effect=AssertionError("no DB")
    ):
        patched = await database_sync_to_async(owner.patch)(
            f"/api/v1/rooms/{room.pk}/", {"topic": "news"}, format="json"
        )
        assert patched.status_code == 200
        mine = (await receive_until(owner_socket, "room.updated"))["room"]
        theirs = (await receive_until(member_socket, "room.updated"))["room"]

    assert (mine["topic"], mine["role"], mine["is_member"]) == ("news", "owner", True)
    assert (theirs["topic"], theirs["role"], theirs["is_member"]) == ("news", "member", True)
    # What each user's REST view of the room says.
    assert mine["unread_count"] == patched.json()["unread_count"] == 3  # read nothing
    assert theirs["unread_count"] == 2  # read up to seq 1


async def test_a_room_update_that_changes_nothing_broadcasts_nothing(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=bearer(user))

    response = await database_sync_to_async(owner.patch)(
        f"/api/v1/rooms/{room.pk}/", {"topic": room.topic, "name": room.name}, format="json"
    )

    assert response.status_code == 200
    assert await socket.receive_nothing(timeout=0.3)


@override_settings(CHAT_MESSAGE_RATE=0.01, CHAT_MESSAGE_BURST=2)
def test_room_updates_count_against_the_owners_limit(room: Room, user: User) -> None:
    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=bearer(user))

    answers = [
        owner.patch(f"/api/v1/rooms/{room.pk}/", {"topic": f"t{i}"}, format="json")
        for i in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) >= 1
    room.refresh_from_db()
    assert room.topic == "t1"


@override_settings(CHAT_MESSAGE_RATE=0.01, CHAT_MESSAGE_BURST=3)
def test_edits_count_against_the_send_limit(room: Room, user: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    sent = client.post(f"/api/v1/rooms/{room.pk}/messages/", {"body": "v0"}, format="json")
    assert sent.status_code == 201

    answers = [
        client.patch(f"/api/v1/messages/{sent.json()['id']}/", {"body": f"v{i}"}, format="json")
        for i in range(1, 4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert Message.objects.get(pk=sent.json()["id"]).body == "v2"
