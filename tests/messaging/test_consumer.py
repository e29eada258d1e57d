import asyncio
from datetime import timedelta
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from messaging.models import Message
from rooms.models import Membership, Room
from tests.conftest import bearer
from tests.factories import MessageFactory, RoomFactory, UserFactory
from tests.messaging.conftest import (
    ORIGIN,
    TIMEOUT,
    Connect,
    close_code,
    close_code_after_open,
    communicator_for,
    receive_until,
)

# Consumers touch the database from worker threads, so tests need real commits.
pytestmark = pytest.mark.django_db(transaction=True)


async def stored_count(room: Room) -> int:
    return await Message.objects.filter(room=room).acount()


# Connecting ----------------------------------------------------------------------


async def test_hello_describes_room_user_presence_and_last_seq(
    connect: Connect, room: Room, user: User
) -> None:
    await database_sync_to_async(MessageFactory.create_batch)(2, room=room)

    socket = await connect(room, user)

    hello = socket.hello
    assert hello["room"]["id"] == room.pk
    assert hello["room"]["role"] == "owner"
    assert hello["room"]["is_member"] is True
    assert hello["user"] == {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
    }
    assert hello["online"] == [hello["user"]]
    assert hello["last_seq"] == 2


async def test_the_bearer_header_authenticates_too(room: Room, user: User) -> None:
    communicator = communicator_for(room.pk, headers=[(b"authorization", bearer(user).encode())])
    connected, _ = await communicator.connect(timeout=TIMEOUT)

    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    await communicator.disconnect()


async def test_no_token_closes_with_4401(room: Room) -> None:
    assert await close_code(communicator_for(room.pk)) == 4401


@pytest.mark.parametrize("kind", ["garbage", "refresh", "expired", "inactive"])
async def test_bad_tokens_close_with_4401(room: Room, user: User, kind: str) -> None:
    if kind == "garbage":
        token = "not.a.jwt"
    elif kind == "refresh":
        token = str(await database_sync_to_async(RefreshToken.for_user)(user))
    elif kind == "expired":
        access = AccessToken.for_user(user)
        access.set_exp(lifetime=-timedelta(seconds=1))
        token = str(access)
    else:
        token = str(AccessToken.for_user(user))
        await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    communicator = communicator_for(room.pk, headers=[ORIGIN])
    communicator.scope["query_string"] = f"token={token}".encode()

    assert await close_code(communicator) == 4401


async def test_a_public_room_not_joined_closes_with_4403(room: Room) -> None:
    outsider = await database_sync_to_async(UserFactory.create)()

    assert await close_code(communicator_for(room.pk, outsider)) == 4403


async def test_unknown_and_invisible_private_rooms_close_with_4404(user: User) -> None:
    private = await database_sync_to_async(RoomFactory.create)(visibility=Room.Visibility.PRIVATE)

    assert await close_code(communicator_for(private.pk, user)) == 4404
    assert await close_code(communicator_for(999_999, user)) == 4404


async def test_a_private_room_member_is_welcome(connect: Connect) -> None:
    private = await database_sync_to_async(RoomFactory.create)(visibility=Room.Visibility.PRIVATE)
    owner = await User.objects.aget(pk=private.owner_id)

    socket = await connect(private, owner)

    assert socket.hello["room"]["visibility"] == "private"


# Sending -------------------------------------------------------------------------


async def test_the_sender_gets_the_ack_before_the_broadcast_and_both_match(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    await socket.send_json_to({"type": "message.send", "body": "hi", "client_id": "c1"})
    ack = await socket.receive_json_from(timeout=TIMEOUT)
    new = await socket.receive_json_from(timeout=TIMEOUT)

    assert ack["type"] == "message.ack"
    assert ack["client_id"] == "c1"
    assert new == {"type": "message.new", "room": room.pk, "message": ack["message"]}
    assert ack["message"]["seq"] == 1
    assert ack["message"]["author"]["id"] == user.pk
    assert await stored_count(room) == 1


async def test_another_member_receives_the_message(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    sender = await connect(room, user)
    receiver = await connect(room, member)

    await sender.send_json_to({"type": "message.send", "body": "hello there"})

    new = await receive_until(receiver, "message.new")
    assert new["message"]["body"] == "hello there"
    assert new["message"]["author"]["id"] == user.pk


async def test_a_repeated_client_id_acks_the_original_and_broadcasts_nothing(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    sender = await connect(room, user)
    receiver = await connect(room, member)
    await sender.send_json_to({"type": "message.send", "body": "once", "client_id": "dup"})
    first_ack = await receive_until(sender, "message.ack")
    await receive_until(sender, "message.new")
    await receive_until(receiver, "message.new")

    await sender.send_json_to({"type": "message.send", "body": "twice", "client_id": "dup"})
    second_ack = await receive_until(sender, "message.ack")

    assert second_ack["message"] == first_ack["message"]
    assert await stored_count(room) == 1
    assert await receiver.receive_nothing(timeout=0.3)
    assert await sender.receive_nothing(timeout=0.1)


async def test_an_author_named_in_the_frame_is_ignored(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    socket = await connect(room, user)

    await socket.send_json_to(
        {
            "type": "message.send",
            "body": "who am I",
            "author": member.pk,
            "author_id": member.pk,
            "user": {"id": member.pk},
        }
    )

    ack = await receive_until(socket, "message.ack")
    assert ack["message"]["author"]["id"] == user.pk
    assert (await Message.objects.aget()).author_id == user.pk


async def test_a_message_posted_over_rest_arrives_on_the_socket(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    response = await database_sync_to_async(client.post)(
        f"/api/v1/rooms/{room.pk}/messages/", {"body": "via rest"}, format="json"
    )

    new = await receive_until(socket, "message.new")
    assert new["message"] == response.json()


async def test_edits_and_deletions_over_rest_reach_the_socket(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    await socket.send_json_to({"type": "message.send", "body": "typo"})
    message = (await receive_until(socket, "message.ack"))["message"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    await database_sync_to_async(client.patch)(
        f"/api/v1/messages/{message['id']}/", {"body": "fixed"}, format="json"
    )
    updated = await receive_until(socket, "message.updated")
    await database_sync_to_async(client.delete)(f"/api/v1/messages/{message['id']}/")
    deleted = await receive_until(socket, "message.deleted")

    assert updated["message"]["body"] == "fixed"
    assert updated["message"]["edited_at"] is not None
    # Each change took the room's next revision: 1 the send, 2 the edit, 3 the deletion.
    assert updated["message"]["rev"] == 2
    assert deleted == {
        "type": "message.deleted",
        "message_id": message["id"],
        "room": room.pk,
        "seq": message["seq"],
        "rev": 3,
    }


@override_settings(CHAT_MESSAGE_RATE=1.0, CHAT_MESSAGE_BURST=5)
async def test_the_rate_limit_refuses_with_retry_after_and_stores_only_what_was_acked(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    for n in range(8):
        await socket.send_json_to({"type": "message.send", "body": f"m{n}", "client_id": f"c{n}"})
    acks, limited = [], []
    while len(acks) + len(limited) < 8:
        frame = await socket.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "message.ack":
            acks.append(frame)
        elif frame["type"] == "error":
            limited.append(frame)

    assert len(acks) == 5
    assert {f["code"] for f in limited} == {"rate_limited"}
    assert all(0 < f["retry_after"] <= 1 for f in limited)
    assert sorted(f["client_id"] for f in limited) == ["c5", "c6", "c7"]
    assert await stored_count(room) == len(acks)


# Bad frames ----------------------------------------------------------------------


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("", "invalid_json"),
    ("{'single': 'quotes'}", "invalid_json"),
    ("[" * 5000 + "]" * 5000, "invalid_json"),  # deeper than the parser goes
    ('{"type": ' + "[" * 8000 + "]" * 8000 + "}", "invalid_json"),
    ('{"type": "read", "seq": NaN}', "invalid_json"),  # not JSON, whatever Python says
    ("Infinity", "invalid_json"),
    ("42", "invalid_frame"),
    ('"message.send"', "invalid_frame"),
    ("null", "invalid_frame"),
    ("[]", "invalid_frame"),
    ("{}", "invalid_frame"),
    ('{"type": 7}', "invalid_frame"),
    ('{"type": "launch.missiles"}', "unknown_type"),
    ('{"type": "message.send"}', "validation_error"),
    ('{"type": "message.send", "body": ""}', "validation_error"),
    ('{"type": "message.send", "body": "  \\n "}', "validation_error"),
    ('{"type": "message.send", "body": "nul \\u0000"}', "validation_error"),
    ('{"type": "message.send", "body": "esc \\u001b[31m"}', "validation_error"),
    ('{"type": "message.send", "body": "lone \\ud800"}', "validation_error"),
    ('{"type": "message.send", "body": 12}', "validation_error"),
    ('{"type": "message.send", "body": "' + "x" * 4001 + '"}', "validation_error"),
    ('{"type": "message.send", "body": "ok", "client_id": "no spaces"}', "validation_error"),
    ('{"type": "typing", "is_typing": "perhaps"}', "validation_error"),
    ('{"type": "read", "seq": -1}', "validation_error"),
    ('{"type": "read", "seq": "x"}', "validation_error"),
    ('{"type": "read", "seq": 99999999999999999999999}', "validation_error"),
]


@pytest.mark.parametrize(("text", "code"), BAD_FRAMES)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(
    connect: Connect, room: Room, user: User, text: str, code: str
) -> None:
    socket = await connect(room, user)

    await socket.send_input({"type": "websocket.receive", "text": text})  # "" included
    error = await socket.receive_json_from(timeout=TIMEOUT)
    await socket.send_json_to({"type": "ping"})

    assert error["type"] == "error"
    assert error["code"] == code
    assert isinstance(error["detail"], str)
    assert error["detail"]
    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
    assert await stored_count(room) == 0


async def test_a_binary_frame_is_invalid_json(connect: Connect, room: Room, user: User) -> None:
    socket = await connect(room, user)

    await socket.send_to(bytes_data=b'{"type": "ping"}')

    assert (await socket.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_json"


async def test_the_error_echoes_the_frames_client_id(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    await socket.send_json_to({"type": "message.send", "body": "", "client_id": "mine-1"})

    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["code"], error["client_id"]) == ("validation_error", "mine-1")


async def test_a_frame_over_16_kib_closes_with_4413(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    # 16 KiB + 1 byte, made of multi-byte characters: the limit counts bytes.
    await socket.send_to(text_data='{"type":"message.send","body":"' + "é" * 8200 + '"}')

    output = await socket.receive_output(timeout=TIMEOUT)
    assert (output["type"], output.get("code")) == ("websocket.close", 4413)
    assert await stored_count(room) == 0


async def test_a_frame_just_under_the_limit_is_read(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    await socket.send_to(text_data='{"type":"ping","pad":"' + "x" * 16_000 + '"}')

    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}


# Typing, presence, read markers --------------------------------------------------


async def test_typing_reaches_the_others_but_not_the_sender(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    typist = await connect(room, user)
    watcher = await connect(room, member)
    await receive_until(typist, "presence")  # the watcher coming online

    await typist.send_json_to({"type": "typing", "is_typing": True})

    frame = await receive_until(watcher, "typing")
    assert frame["user"]["id"] == user.pk
    assert frame["is_typing"] is True
    assert await typist.receive_nothing(timeout=0.3)
    assert await stored_count(room) == 0


async def test_presence_announces_the_first_socket_and_the_last(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    first = await connect(room, user)
    second = await connect(room, member)

    online = await receive_until(first, "presence")
    assert (online["user"]["id"], online["status"]) == (member.pk, "online")
    assert {u["id"] for u in second.hello["online"]} == {user.pk, member.pk}

    # A second socket of the same user announces nothing; closing one of two neither.
    extra = await connect(room, member)
    await extra.disconnect()
    assert await first.receive_nothing(timeout=0.3)

    await second.disconnect()
    offline = await receive_until(first, "presence")
    assert (offline["user"]["id"], offline["status"]) == (member.pk, "offline")


async def test_a_read_frame_moves_the_marker_forward_only(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    await database_sync_to_async(MessageFactory.create_batch)(5, room=room)
    socket = await connect(room, member)

    await socket.send_json_to({"type": "read", "seq": 4})
    await socket.send_json_to({"type": "read", "seq": 2})
    await socket.send_json_to({"type": "ping"})
    await receive_until(socket, "pong")

    membership = await Membership.objects.aget(room=room, user=member)
    assert membership.last_read_seq == 4


# Server-side closes --------------------------------------------------------------


async def test_removing_a_member_closes_their_sockets_with_4403(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    owner_socket = await connect(room, user)
    member_socket = await connect(room, member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    response = await database_sync_to_async(client.delete)(
        f"/api/v1/rooms/{room.pk}/members/{member.pk}/"
    )

    assert response.status_code == 204
    while (output := await member_socket.receive_output(timeout=TIMEOUT))[
        "type"
    ] != "websocket.close":
        pass
    assert output["code"] == 4403
    await owner_socket.send_json_to({"type": "ping"})
    assert (await receive_until(owner_socket, "pong"))["type"] == "pong"


async def test_deleting_the_room_announces_it_and_closes_with_4404(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    member_socket = await connect(room, member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    response = await database_sync_to_async(client.delete)(f"/api/v1/rooms/{room.pk}/")

    assert response.status_code == 204
    assert await receive_until(member_socket, "room.deleted") == {
        "type": "room.deleted",
        "room": room.pk,
    }
    assert await close_code_after_open(member_socket) == 4404


async def test_a_room_update_reaches_members_as_they_see_the_room(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    member_socket = await connect(room, member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    await database_sync_to_async(client.patch)(
        f"/api/v1/rooms/{room.pk}/", {"topic": "new topic"}, format="json"
    )

    frame = await receive_until(member_socket, "room.updated")
    assert frame["room"]["topic"] == "new topic"
    assert frame["room"]["role"] == "member"


# Ordering ------------------------------------------------------------------------


async def test_a_gap_in_the_broadcasts_is_filled_from_the_database_in_order(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    receiver = await connect(room, member)
    # Stored without a broadcast, as if the channel layer had dropped it.
    await database_sync_to_async(MessageFactory.create)(room=room, body="dropped")
    sender = await connect(room, user)

    await sender.send_json_to({"type": "message.send", "body": "after the gap"})

    first = await receive_until(receiver, "message.new")
    second = await receive_until(receiver, "message.new")
    assert [first["message"]["seq"], second["message"]["seq"]] == [1, 2]
    assert first["message"]["body"] == "dropped"


async def test_many_senders_are_delivered_in_seq_order(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    with override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1000):
        watcher = await connect(room, user)
        senders = [await connect(room, member) for _ in range(3)]
        for n in range(10):
            for socket in senders:
                await socket.send_json_to({"type": "message.send", "body": f"{n}"})
        seqs = [(await receive_until(watcher, "message.new"))["message"]["seq"] for _ in range(30)]

    assert seqs == list(range(1, 31))
    await asyncio.sleep(0)


async def test_a_database_failure_while_opening_closes_with_4503_and_leaves_nothing_behind(
    room: Room, user: User
) -> None:
    with mock.patch(
        "messaging.consumers.socket_open", side_effect=OperationalError("database is down")
    ):
        assert await close_code(communicator_for(room.pk, user)) == 4503

    # The next socket opens normally, and nobody stale is online.
    communicator = communicator_for(room.pk, user)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert connected
    assert [u["id"] for u in hello["online"]] == [user.pk]
    await communicator.disconnect()
