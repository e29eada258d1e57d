"""User sockets across two daphne processes on one PostgreSQL and one Redis: what
happens on one process reaches a user socket on the other (API.md: ``/ws/``)."""

import asyncio
import contextlib
from typing import Any

import pytest

from tests.scale.helpers import brief, frames_until, of_type
from tests.support.client import (
    assert_nothing_pending,
    create_room,
    join_room,
    open_socket,
    open_user_socket,
    post_message,
    receive,
    register,
    send,
)
from tests.support.servers import StartServer

pytestmark = pytest.mark.scale

DELIVERY_TIMEOUT = 30.0


async def test_rooms_joined_and_left_on_one_process_reach_a_user_socket_on_the_other(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    room = await asyncio.to_thread(create_room, server_a, alice, "general")
    room_id = room["id"]

    async with contextlib.AsyncExitStack() as sockets:
        alice_ws = await sockets.enter_async_context(
            open_socket(server_a, room_id, token=alice.access)
        )
        await receive(alice_ws)
        bob_ws = await sockets.enter_async_context(open_user_socket(server_b, token=bob.access))
        assert (await receive(bob_ws))["rooms"] == []

        # Bob joins on A; his user socket on B takes up the room, then its messages.
        await asyncio.to_thread(join_room, server_a, bob, room_id)
        joined = await receive(bob_ws)
        assert (joined["type"], joined["room"]["id"]) == ("room.joined", room_id)
        message = await asyncio.to_thread(post_message, server_a, alice, room_id, "hello bob")
        assert await receive(bob_ws) == {"type": "message.new", "room": room_id, "message": message}

        # Presence is by user and lives in Redis: Alice on A sees Bob's user socket on B.
        await send(bob_ws, {"type": "watch", "room": room_id})
        watching = await receive(bob_ws)
        assert {u["id"] for u in watching["online"]} == {alice.id, bob.id}

        # Bob sends on B over his user socket; Alice's room socket on A has it.
        await send(
            bob_ws, {"type": "message.send", "room": room_id, "body": "hi", "client_id": "1"}
        )
        ack = await receive(bob_ws)
        assert ack["type"] == "message.ack"
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": room_id,
            "message": ack["message"],
        }
        frames = await frames_until(
            alice_ws, lambda got: bool(of_type(got, "message.new")[1:]), within=DELIVERY_TIMEOUT
        )
        assert of_type(frames, "message.new")[-1]["message"] == ack["message"]

        # A read on B reaches Bob's devices on A.
        phone = await sockets.enter_async_context(open_user_socket(server_a, token=bob.access))
        await receive(phone)
        # (Sending read Bob's marker up to his message: one more from Alice to read.)
        later = await asyncio.to_thread(post_message, server_a, alice, room_id, "one more")
        await send(bob_ws, {"type": "read", "room": room_id, "seq": later["seq"]})
        read = await frames_until(
            phone, lambda got: bool(of_type(got, "read.updated")), within=DELIVERY_TIMEOUT
        )
        assert of_type(read, "read.updated") == [
            {
                "type": "read.updated",
                "room": room_id,
                "seq": later["seq"],
                "unread_count": 0,
                "mention_count": 0,
            }
        ]

        # Alice removes Bob on A: room.left on B, and nothing of the room after it.
        removed = await asyncio.to_thread(
            server_a.request,
            "DELETE",
            f"/api/v1/rooms/{room_id}/members/{bob.id}/",
            token=alice.access,
        )
        assert removed.status == 204
        frames = await frames_until(
            bob_ws, lambda got: bool(of_type(got, "room.left")), within=DELIVERY_TIMEOUT
        )
        assert of_type(frames, "room.left") == [
            {"type": "room.left", "room": room_id, "reason": "removed"}
        ]
        await asyncio.to_thread(post_message, server_a, alice, room_id, "after")
        await assert_nothing_pending(bob_ws, settle=0.5)

        # Bob's user sockets close: Alice hears him go offline.
        await sockets.aclose()


async def test_a_user_socket_opening_while_both_processes_send_misses_nothing(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    rooms = [await asyncio.to_thread(create_room, server_a, alice, f"room-{n}") for n in range(3)]
    for room in rooms:
        await asyncio.to_thread(join_room, server_b, bob, room["id"])
    sending = asyncio.Event()
    done = asyncio.Event()
    sent: dict[int, int] = {room["id"]: 0 for room in rooms}

    async def sender(server: Any) -> None:
        n = 0
        while not done.is_set():
            for room in rooms:
                await asyncio.to_thread(post_message, server, alice, room["id"], f"m{n}")
                sent[room["id"]] += 1
            n += 1
            sending.set()

    senders = [asyncio.create_task(sender(server)) for server in (server_a, server_b)]
    try:
        await sending.wait()
        async with open_user_socket(server_b, token=bob.access) as bob_ws:
            hello = await receive(bob_ws)
            await asyncio.sleep(1.0)
            done.set()
            await asyncio.gather(*senders)
            last = {entry["room"]: entry["last_rev"] for entry in hello["rooms"]}
            total = {room["id"]: sent[room["id"]] for room in rooms}
            revs: dict[int, list[int]] = {room_id: [] for room_id in last}

            def complete(frames: list[dict[str, Any]]) -> bool:
                if frames and frames[-1]["type"] == "message.new":
                    revs[frames[-1]["room"]].append(frames[-1]["message"]["rev"])
                return all((revs[r][-1] if revs[r] else last[r]) >= total[r] for r in revs)

            await frames_until(bob_ws, complete, within=DELIVERY_TIMEOUT)
    finally:
        done.set()
        await asyncio.gather(*senders, return_exceptions=True)

    # Every room from its hello revision on: in rev order, none missing, none twice.
    for room_id, got in revs.items():
        assert got == list(range(last[room_id] + 1, total[room_id] + 1)), room_id


async def test_presence_by_user_crosses_processes(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    room = await asyncio.to_thread(create_room, server_a, alice, "general")
    await asyncio.to_thread(join_room, server_b, bob, room["id"])

    async with open_socket(server_a, room["id"], token=alice.access) as alice_ws:
        await receive(alice_ws)
        async with open_user_socket(server_b, token=bob.access) as bob_ws:
            await receive(bob_ws)
            online = await receive(alice_ws)
            assert online == {
                "type": "presence",
                "room": room["id"],
                "user": brief(bob),
                "status": "online",
            }
            # A room socket of Bob's on A as well: he was online already.
            async with open_socket(server_a, room["id"], token=bob.access) as bob_room_ws:
                hello = await receive(bob_room_ws)
                assert {u["id"] for u in hello["online"]} == {alice.id, bob.id}
            await assert_nothing_pending(alice_ws, settle=0.5)  # still online by /ws/
        offline = await receive(alice_ws)
        assert (offline["type"], offline["status"]) == ("presence", "offline")
