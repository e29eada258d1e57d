"""Two daphne processes, one PostgreSQL database, one Redis: one deployment.

Every client talks to the server it was given, as behind a load balancer, and hears
everything that happens in its room whichever process it happened on.
"""

import asyncio
import contextlib

import pytest

from tests.scale.helpers import (
    all_messages,
    brief,
    frames_until,
    new_seqs,
    of_type,
    online_ids,
)
from tests.support.client import (
    assert_nothing_pending,
    close_code,
    create_room,
    join_room,
    open_socket,
    receive,
    register,
    send,
)
from tests.support.servers import StartServer

pytestmark = pytest.mark.scale

CONCURRENT_SENDS = 40  # per sender
DELIVERY_TIMEOUT = 30.0


async def test_everything_a_room_hears_crosses_between_two_server_processes(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    carol = await asyncio.to_thread(register, server_b, "carol")
    room = await asyncio.to_thread(create_room, server_a, alice, "general")
    room_id = room["id"]
    await asyncio.to_thread(join_room, server_b, bob, room_id)
    await asyncio.to_thread(join_room, server_a, carol, room_id)

    async with contextlib.AsyncExitStack() as sockets:
        alice_ws = await sockets.enter_async_context(
            open_socket(server_a, room_id, token=alice.access)
        )
        hello = await receive(alice_ws)
        assert hello["online"] == [brief(alice)]
        await assert_nothing_pending(alice_ws)  # her "online" has gone out

        # Presence lives in Redis: B's hello knows that Alice is online on A, and A
        # hears that Bob came online on B.
        bob_ws = await sockets.enter_async_context(open_socket(server_b, room_id, token=bob.access))
        hello = await receive(bob_ws)
        assert online_ids(hello) == {alice.id, bob.id}
        assert await receive(alice_ws) == {
            "type": "presence",
            "room": room_id,
            "user": brief(bob),
            "status": "online",
        }
        await assert_nothing_pending(bob_ws)

        # Both processes pass their health check while sockets are open on them: a
        # load balancer polls it, and an open socket must not make a server look down.
        for server in (server_a, server_b):
            health = await asyncio.to_thread(server.request, "GET", "/healthz")
            assert (health.status, health.body["channel_layer"]) == (200, "ok"), health

        # A message sent on A reaches B, and one sent on B reaches A.
        await send(alice_ws, {"type": "message.send", "body": "from A", "client_id": "a-1"})
        ack = await receive(alice_ws)
        assert (ack["type"], ack["client_id"]) == ("message.ack", "a-1")
        from_a = ack["message"]
        assert await receive(alice_ws) == {
            "type": "message.new",
            "room": room_id,
            "message": from_a,
        }
        assert await receive(bob_ws) == {"type": "message.new", "room": room_id, "message": from_a}

        await send(bob_ws, {"type": "message.send", "body": "from B", "client_id": "b-1"})
        ack = await receive(bob_ws)
        assert (ack["type"], ack["client_id"]) == ("message.ack", "b-1")
        from_b = ack["message"]
        assert from_b["seq"] == from_a["seq"] + 1
        assert await receive(bob_ws) == {"type": "message.new", "room": room_id, "message": from_b}
        assert await receive(alice_ws) == {
            "type": "message.new",
            "room": room_id,
            "message": from_b,
        }

        # An edit over REST on B reaches both; so does a delete over REST on A.
        edited = await asyncio.to_thread(
            server_b.request,
            "PATCH",
            f"/api/v1/messages/{from_a['id']}/",
            token=alice.access,
            body={"body": "from A, edited"},
        )
        assert edited.status == 200, edited
        assert edited.body["edited_at"] is not None
        for ws in (alice_ws, bob_ws):
            assert await receive(ws) == {
                "type": "message.updated",
                "room": room_id,
                "message": edited.body,
            }

        deleted = await asyncio.to_thread(
            server_a.request, "DELETE", f"/api/v1/messages/{from_b['id']}/", token=bob.access
        )
        assert deleted.status == 204, deleted
        for ws in (alice_ws, bob_ws):
            assert await receive(ws) == {
                "type": "message.deleted",
                "message_id": from_b["id"],
                "room": room_id,
                "seq": from_b["seq"],
                "rev": edited.body["rev"] + 1,
            }

        # Typing on B reaches A, and is not echoed to its sender.
        await send(bob_ws, {"type": "typing", "is_typing": True})
        assert await receive(alice_ws) == {
            "type": "typing",
            "room": room_id,
            "user": brief(bob),
            "is_typing": True,
        }
        await assert_nothing_pending(bob_ws)

        # Carol comes online on B: her hello lists both; A and B both hear of her.
        carol_ws = await sockets.enter_async_context(
            open_socket(server_b, room_id, token=carol.access)
        )
        hello = await receive(carol_ws)
        assert online_ids(hello) == {alice.id, bob.id, carol.id}
        online_carol = {
            "type": "presence",
            "room": room_id,
            "user": brief(carol),
            "status": "online",
        }
        assert await receive(alice_ws) == online_carol
        assert await receive(bob_ws) == online_carol
        await assert_nothing_pending(carol_ws)

        # The owner removes Carol over REST on A: her socket on B closes with 4403, and
        # since it was her last one, the room hears her go offline.
        removed = await asyncio.to_thread(
            server_a.request,
            "DELETE",
            f"/api/v1/rooms/{room_id}/members/{carol.id}/",
            token=alice.access,
        )
        assert removed.status == 204, removed
        assert await close_code(carol_ws) == 4403
        offline_carol = {
            "type": "presence",
            "room": room_id,
            "user": brief(carol),
            "status": "offline",
        }
        assert await receive(alice_ws) == offline_carol
        assert await receive(bob_ws) == offline_carol
        await assert_nothing_pending(alice_ws)
        await assert_nothing_pending(bob_ws)

        # The owner deletes the room over REST on B: both sockets hear it and close.
        gone = await asyncio.to_thread(
            server_b.request, "DELETE", f"/api/v1/rooms/{room_id}/", token=alice.access
        )
        assert gone.status == 204, gone
        for ws in (alice_ws, bob_ws):
            assert await receive(ws) == {"type": "room.deleted", "room": room_id}
            assert await close_code(ws) == 4404


async def test_concurrent_senders_on_two_servers_are_heard_in_seq_order_everywhere(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    carol = await asyncio.to_thread(register, server_a, "carol")
    dave = await asyncio.to_thread(register, server_b, "dave")
    room = await asyncio.to_thread(create_room, server_a, alice, "busy")
    room_id = room["id"]
    for account, server in ((bob, server_b), (carol, server_a), (dave, server_b)):
        await asyncio.to_thread(join_room, server, account, room_id)

    # The senders, and a listener that sends nothing, on each server.
    placement = {"alice": server_a, "carol": server_a, "bob": server_b, "dave": server_b}
    accounts = {"alice": alice, "bob": bob, "carol": carol, "dave": dave}
    total = 2 * CONCURRENT_SENDS
    async with contextlib.AsyncExitStack() as stack:
        sockets = {}
        for name, server in placement.items():
            ws = await stack.enter_async_context(
                open_socket(server, room_id, token=accounts[name].access)
            )
            assert (await receive(ws))["last_seq"] == 0
            sockets[name] = ws

        async def blast(name: str) -> None:
            for n in range(CONCURRENT_SENDS):
                frame = {"type": "message.send", "body": f"{name} {n}", "client_id": f"{name}-{n}"}
                await send(sockets[name], frame)

        await asyncio.gather(blast("alice"), blast("bob"))

        def heard_all(frames: list[dict[str, object]]) -> bool:
            return len(of_type(frames, "message.new")) >= total

        heard = await asyncio.gather(
            *(frames_until(ws, heard_all, within=DELIVERY_TIMEOUT) for ws in sockets.values())
        )
        received = dict(zip(sockets, heard, strict=True))

    for name, frames in received.items():
        # Each socket, on either server, sees 1..N in order: no gap, no duplicate.
        assert new_seqs(frames) == list(range(1, total + 1)), name
        assert not of_type(frames, "error"), name

    stored = await asyncio.to_thread(all_messages, server_b, dave, room_id)
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    by_client_id = {m["client_id"]: m for m in stored}
    for sender in ("alice", "bob"):
        acks = of_type(received[sender], "message.ack")
        # One ack per frame, in the order sent, each for the message as stored.
        assert [a["client_id"] for a in acks] == [f"{sender}-{n}" for n in range(CONCURRENT_SENDS)]
        assert [a["message"] for a in acks] == [by_client_id[a["client_id"]] for a in acks]
    # What every socket heard is what is stored.
    for frames in received.values():
        assert [f["message"] for f in of_type(frames, "message.new")] == stored


async def test_the_per_user_socket_limit_counts_over_both_processes(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    limit = {"CHAT_MAX_SOCKETS_PER_USER": "2"}
    server_a, server_b = start_server(env=limit), start_server(env=limit)
    alice = await asyncio.to_thread(register, server_a, "alice")
    room_id = (await asyncio.to_thread(create_room, server_a, alice, "general"))["id"]

    async with (
        open_socket(server_a, room_id, token=alice.access) as first,
        open_socket(server_b, room_id, token=alice.access) as second,
    ):
        for socket in (first, second):
            assert (await receive(socket))["type"] == "hello"
        # The third, on either process, is one too many.
        for server in (server_a, server_b):
            async with open_socket(server, room_id, token=alice.access) as third:
                assert await close_code(third) == 4429
        await assert_nothing_pending(first)  # the two that fit stay open
        await assert_nothing_pending(second)


def change_revs(frames: list[dict[str, object]]) -> list[int]:
    """The revisions of the room's message events, in the order a socket got them."""
    revs = []
    for frame in frames:
        if frame["type"] in ("message.new", "message.updated"):
            revs.append(frame["message"]["rev"])  # type: ignore[index]
        elif frame["type"] == "message.deleted":
            revs.append(frame["rev"])
    return revs  # type: ignore[return-value]


async def test_changes_made_on_two_servers_reach_every_socket_in_rev_order(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    """Sends over one process's sockets, edits and deletions over the other's REST: each
    socket, on either server, gets revisions 1, 2, 3, … in order, each once."""
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    room = await asyncio.to_thread(create_room, server_a, alice, "edits")
    room_id = room["id"]
    await asyncio.to_thread(join_room, server_b, bob, room_id)
    sends, edits = CONCURRENT_SENDS, CONCURRENT_SENDS // 2

    async with contextlib.AsyncExitStack() as stack:
        alice_ws = await stack.enter_async_context(
            open_socket(server_a, room_id, token=alice.access)
        )
        bob_ws = await stack.enter_async_context(open_socket(server_b, room_id, token=bob.access))
        for ws in (alice_ws, bob_ws):
            assert (await receive(ws))["last_rev"] == 0
        for n in range(sends):
            await send(alice_ws, {"type": "message.send", "body": f"m{n}", "client_id": f"a-{n}"})

        async def change_on_b() -> None:
            # Edit and delete the first messages as soon as they are stored.
            for n in range(edits):
                while True:
                    page = await asyncio.to_thread(
                        server_b.request,
                        "GET",
                        f"/api/v1/rooms/{room_id}/messages/?after={n}&limit=1",
                        token=alice.access,
                    )
                    if page.body["results"]:
                        break
                    await asyncio.sleep(0.01)
                message_id = page.body["results"][0]["id"]
                method, body = ("DELETE", None) if n % 2 else ("PATCH", {"body": f"m{n}!"})
                answer = await asyncio.to_thread(
                    server_b.request,
                    method,
                    f"/api/v1/messages/{message_id}/",
                    token=alice.access,
                    body=body,
                )
                assert answer.status in (200, 204), answer

        await change_on_b()
        total = sends + edits

        def heard_all(frames: list[dict[str, object]]) -> bool:
            return len(change_revs(frames)) >= total

        heard = await asyncio.gather(
            *(frames_until(ws, heard_all, within=DELIVERY_TIMEOUT) for ws in (alice_ws, bob_ws))
        )

    for frames in heard:
        assert change_revs(frames) == list(range(1, total + 1))
    stored = await asyncio.to_thread(all_messages, server_b, bob, room_id)
    assert max(m["rev"] for m in stored) == total
