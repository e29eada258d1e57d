"""The user socket and sync end to end (API.md: WebSocket ``/ws/``, Sync): a real daphne
process, plain HTTP and a real WebSocket client, as a mobile app uses them."""

import asyncio
import contextlib
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.client import (
    FRAME_LIMIT,
    Account,
    Server,
    assert_nothing_pending,
    close_code,
    create_room,
    join_room,
    open_socket,
    open_user_socket,
    post_message,
    receive,
    register,
    send,
)

pytestmark = pytest.mark.e2e


async def until(socket: Any, frame_type: str) -> dict[str, Any]:
    """The next frame of ``frame_type``, skipping others."""
    while True:
        frame = await receive(socket)
        if frame["type"] == frame_type:
            return frame


def request(server: Server, account: Account, method: str, path: str, body: Any = None) -> Any:
    return server.request(method, path, token=account.access, body=body)


async def call(server: Server, account: Account, method: str, path: str, body: Any = None) -> Any:
    return await asyncio.to_thread(request, server, account, method, path, body)


async def test_one_socket_carries_every_room_and_its_changes(server: Server) -> None:
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    general = await asyncio.to_thread(create_room, server, alice, "general")
    random = await asyncio.to_thread(create_room, server, alice, "random")
    for room in (general, random):
        await asyncio.to_thread(join_room, server, bob, room["id"])
    await asyncio.to_thread(post_message, server, alice, general["id"], "before")

    async with open_user_socket(server, token=bob.access, via="query") as bob_ws:
        hello = await receive(bob_ws)
        assert hello["type"] == "hello"
        assert hello["user"]["id"] == bob.id
        assert {entry["room"]: entry for entry in hello["rooms"]} == {
            general["id"]: {
                "room": general["id"],
                "last_seq": 1,
                "last_rev": 1,
                "unread_count": 1,
                "mention_count": 0,
            },
            random["id"]: {
                "room": random["id"],
                "last_seq": 0,
                "last_rev": 0,
                "unread_count": 0,
                "mention_count": 0,
            },
        }

        one = await asyncio.to_thread(post_message, server, alice, random["id"], "one")
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": random["id"],
            "message": one,
        }
        edited = await call(server, alice, "PATCH", f"/api/v1/messages/{one['id']}/", {"body": "1"})
        assert edited.status == 200
        assert await receive(bob_ws) == {
            "type": "message.updated",
            "room": random["id"],
            "message": edited.body,
        }
        deleted = await call(server, alice, "DELETE", f"/api/v1/messages/{one['id']}/")
        assert deleted.status == 204
        assert await receive(bob_ws) == {
            "type": "message.deleted",
            "message_id": one["id"],
            "room": random["id"],
            "seq": 1,
            "rev": 3,
        }

        # Sending over the user socket names the room; the ack comes before the event.
        await send(
            bob_ws,
            {"type": "message.send", "room": general["id"], "body": "hi", "client_id": "b-1"},
        )
        ack = await receive(bob_ws)
        assert (ack["type"], ack["client_id"], ack["message"]["room"]) == (
            "message.ack",
            "b-1",
            general["id"],
        )
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": general["id"],
            "message": ack["message"],
        }
        await assert_nothing_pending(bob_ws)


async def test_rooms_joined_and_left_elsewhere_take_effect_on_the_live_socket(
    server: Server,
) -> None:
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    room = await asyncio.to_thread(create_room, server, alice, "general")

    async with open_user_socket(server, token=bob.access) as bob_ws:
        assert (await receive(bob_ws))["rooms"] == []

        await asyncio.to_thread(join_room, server, bob, room["id"])  # on another device
        joined = await receive(bob_ws)
        assert joined["type"] == "room.joined"
        assert (joined["room"]["id"], joined["room"]["is_member"]) == (room["id"], True)
        message = await asyncio.to_thread(post_message, server, alice, room["id"], "welcome")
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": room["id"],
            "message": message,
        }

        removed = await call(
            server, alice, "DELETE", f"/api/v1/rooms/{room['id']}/members/{bob.id}/"
        )
        assert removed.status == 204
        assert await receive(bob_ws) == {
            "type": "room.left",
            "room": room["id"],
            "reason": "removed",
        }
        await asyncio.to_thread(post_message, server, alice, room["id"], "after")
        await assert_nothing_pending(bob_ws)  # nothing of that room follows

        # A private room that Alice adds Bob to; then she deletes it.
        secret = await call(
            server, alice, "POST", "/api/v1/rooms/", {"name": "secret", "visibility": "private"}
        )
        added = await call(
            server,
            alice,
            "POST",
            f"/api/v1/rooms/{secret.body['id']}/members/",
            {"username": "bob"},
        )
        assert added.status == 201
        assert (await receive(bob_ws))["type"] == "room.joined"
        gone = await call(server, alice, "DELETE", f"/api/v1/rooms/{secret.body['id']}/")
        assert gone.status == 204
        assert await receive(bob_ws) == {"type": "room.deleted", "room": secret.body["id"]}
        assert await receive(bob_ws) == {
            "type": "room.left",
            "room": secret.body["id"],
            "reason": "deleted",
        }
        await assert_nothing_pending(bob_ws)


async def test_read_markers_reach_every_device_and_frames_elsewhere_are_refused(
    server: Server,
) -> None:
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    room = await asyncio.to_thread(create_room, server, alice, "general")
    other = await asyncio.to_thread(create_room, server, alice, "other")
    secret = await call(
        server, alice, "POST", "/api/v1/rooms/", {"name": "secret", "visibility": "private"}
    )
    await asyncio.to_thread(join_room, server, bob, room["id"])
    for body in ("a", "b", "c"):
        await asyncio.to_thread(post_message, server, alice, room["id"], body)

    async with contextlib.AsyncExitStack() as stack:
        phone = await stack.enter_async_context(open_user_socket(server, token=bob.access))
        laptop = await stack.enter_async_context(open_user_socket(server, token=bob.access))
        for device in (phone, laptop):
            assert (await receive(device))["rooms"][0]["unread_count"] == 3

        await send(phone, {"type": "read", "room": room["id"], "seq": 2})
        for device in (phone, laptop):
            assert await receive(device) == {
                "type": "read.updated",
                "room": room["id"],
                "seq": 2,
                "unread_count": 1,
                "mention_count": 0,
            }

        for room_id, code in ((other["id"], "forbidden"), (secret.body["id"], "not_found")):
            await send(
                phone, {"type": "message.send", "room": room_id, "body": "x", "client_id": "c"}
            )
            error = await receive(phone)
            assert (error["type"], error["code"], error["room"], error["client_id"]) == (
                "error",
                code,
                room_id,
                "c",
            )
        await assert_nothing_pending(phone)  # still open


async def test_watching_brings_typing_presence_and_a_channels_messages(server: Server) -> None:
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    room = await asyncio.to_thread(create_room, server, alice, "general")
    channel = await asyncio.to_thread(create_room, server, alice, "announcements")
    await asyncio.to_thread(join_room, server, bob, room["id"])

    async with open_user_socket(server, token=bob.access) as bob_ws:
        await receive(bob_ws)
        async with open_socket(server, room["id"], token=alice.access) as alice_ws:
            await receive(alice_ws)
            await send(alice_ws, {"type": "typing", "is_typing": True})
            await assert_nothing_pending(bob_ws)  # not watched: no typing, no presence

            await send(bob_ws, {"type": "watch", "room": room["id"]})
            watching = await receive(bob_ws)
            assert watching["type"] == "watching"
            assert {u["id"] for u in watching["online"]} == {alice.id, bob.id}
            await asyncio.sleep(1.1)  # typing reaches a room at most once a second
            await send(alice_ws, {"type": "typing", "is_typing": False})
            typing = await receive(bob_ws)
            assert (typing["type"], typing["room"], typing["is_typing"]) == (
                "typing",
                room["id"],
                False,
            )
        offline = await receive(bob_ws)
        assert (offline["type"], offline["room"], offline["status"]) == (
            "presence",
            room["id"],
            "offline",
        )

        # A public channel Bob is not in: its messages while he watches it.
        await send(bob_ws, {"type": "watch", "room": channel["id"]})
        assert (await receive(bob_ws))["type"] == "watching"
        news = await asyncio.to_thread(post_message, server, alice, channel["id"], "news")
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": channel["id"],
            "message": news,
        }
        await send(bob_ws, {"type": "unwatch", "room": channel["id"]})
        assert await receive(bob_ws) == {"type": "unwatched", "room": channel["id"]}
        await asyncio.to_thread(post_message, server, alice, channel["id"], "unheard")
        await assert_nothing_pending(bob_ws)


async def test_a_device_that_was_offline_syncs_everything_in_one_request(server: Server) -> None:
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    kept = await asyncio.to_thread(create_room, server, alice, "kept")
    lost = await asyncio.to_thread(create_room, server, alice, "lost")
    quiet = await asyncio.to_thread(create_room, server, alice, "quiet")
    for room in (kept, lost, quiet):
        await asyncio.to_thread(join_room, server, bob, room["id"])
    seen = await asyncio.to_thread(post_message, server, alice, kept["id"], "seen")

    async with open_user_socket(server, token=bob.access) as bob_ws:
        hello = await receive(bob_ws)
    held = {str(entry["room"]): entry["last_rev"] for entry in hello["rooms"]}

    # While Bob is away: a new message, an edit and a deletion, and a removal.
    new = await asyncio.to_thread(post_message, server, alice, kept["id"], "new")
    await call(server, alice, "PATCH", f"/api/v1/messages/{seen['id']}/", {"body": "seen, edited"})
    await call(server, alice, "DELETE", f"/api/v1/messages/{new['id']}/")
    await call(server, alice, "DELETE", f"/api/v1/rooms/{lost['id']}/members/{bob.id}/")

    answer = await call(server, bob, "POST", "/api/v1/sync/", {"rooms": held})

    assert answer.status == 200, answer
    rooms = {entry["room"]["id"]: entry for entry in answer.body["rooms"]}
    assert set(rooms) == {kept["id"], quiet["id"]}
    assert answer.body["left"] == [lost["id"]]
    changes = rooms[kept["id"]]["changes"]
    assert [(m["id"], m["body"], m["is_deleted"]) for m in changes] == [
        (seen["id"], "seen, edited", False),
        (new["id"], "", True),
    ]
    assert [m["rev"] for m in changes] == [3, 4]
    assert rooms[kept["id"]]["room"]["last_rev"] == 4
    assert (rooms[quiet["id"]]["changes"], rooms[quiet["id"]]["next"]) == ([], None)


async def test_the_user_socket_closes_as_room_sockets_do(server: Server) -> None:
    alice = await asyncio.to_thread(register, server, "alice")

    async with open_user_socket(server, token=None) as ws:
        assert await close_code(ws) == 4401
    async with open_user_socket(server, token="not-a-token", via="query") as ws:
        assert await close_code(ws) == 4401
    async with open_user_socket(server, token=alice.access) as ws:
        await receive(ws)
        await ws.send('{"type":"ping","pad":"' + "x" * FRAME_LIMIT + '"}')
        assert await close_code(ws) == 4413
    with pytest.raises(InvalidStatus) as refused:
        async with open_user_socket(
            server, token=alice.access, via="query", origin="https://evil.example.com"
        ):
            pass
    assert refused.value.response.status_code == 403
