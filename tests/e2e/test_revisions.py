"""API.md "Revisions" against a running server: every change takes the room's next
revision, sockets see each once in rev order, and a client that was away recovers every
edit and deletion from ``changes/?after=``."""

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.client import (
    Account,
    Server,
    assert_nothing_pending,
    create_room,
    history,
    join_room,
    open_socket,
    post_message,
    receive,
    register_all,
    send,
)

pytestmark = pytest.mark.e2e


def edit(server: Server, author: Account, message_id: int, body: str) -> dict[str, Any]:
    answer = server.request(
        "PATCH", f"/api/v1/messages/{message_id}/", token=author.access, body={"body": body}
    )
    assert answer.status == 200, answer
    return dict(answer.body)


def delete(server: Server, account: Account, message_id: int) -> None:
    answer = server.request("DELETE", f"/api/v1/messages/{message_id}/", token=account.access)
    assert answer.status == 204, answer


def all_changes(server: Server, account: Account, room_id: int, after: int) -> list[Any]:
    """Every page of ``changes/?after=``, following ``next``, two at a time."""
    url: str | None = f"/api/v1/rooms/{room_id}/changes/?after={after}&limit=2"
    changes: list[Any] = []
    while url is not None:
        page = history(server, account, url)
        assert len(page["results"]) <= 2
        changes.extend(page["results"])
        url = page["next"]
    return changes


def whole_history(server: Server, account: Account, room_id: int) -> dict[int, Any]:
    url: str | None = f"/api/v1/rooms/{room_id}/messages/?limit=100"
    messages: dict[int, Any] = {}
    while url is not None:
        page = history(server, account, url)
        messages.update((m["id"], m) for m in page["results"])
        url = page["next"]
    return messages


async def test_every_change_takes_the_next_revision_and_sockets_get_them_in_order(
    server: Server,
) -> None:
    alice, bob = register_all(server, "alice", "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    assert (room["kind"], room["last_seq"], room["last_rev"]) == ("channel", 0, 0)

    async with open_socket(server, room["id"], token=bob.access) as socket:
        hello = await receive(socket)
        assert (hello["last_seq"], hello["last_rev"]) == (0, 0)
        await send(socket, {"type": "message.send", "body": "first", "client_id": "b-1"})
        first = None
        while first is None:  # the ack and the broadcast, in either order
            frame = await receive(socket)
            if frame["type"] == "message.ack":
                first = frame["message"]
        second = post_message(server, alice, room["id"], "second")
        edited = edit(server, bob, first["id"], "first, edited")
        edit(server, bob, first["id"], "first, edited")  # the same body: no change
        delete(server, alice, second["id"])
        delete(server, alice, second["id"])  # already deleted: 204 again, no change

        frames: list[dict[str, Any]] = []
        while len(frames) < 3:
            frame = await receive(socket)
            if frame.get("message", {}).get("rev") != 1:  # the broadcast of the acked one
                frames.append(frame)
        assert [(f["type"], f.get("message", f).get("rev")) for f in frames] == [
            ("message.new", 2),
            ("message.updated", 3),
            ("message.deleted", 4),
        ]
        assert (first["rev"], second["rev"], edited["rev"]) == (1, 2, 3)
        assert frames[2] == {
            "type": "message.deleted",
            "message_id": second["id"],
            "room": room["id"],
            "seq": 2,
            "rev": 4,
        }
        await assert_nothing_pending(socket)  # the no-op edit and deletion sent nothing

    shown = server.request("GET", f"/api/v1/rooms/{room['id']}/", token=bob.access)
    assert (shown.body["last_seq"], shown.body["last_rev"]) == (2, 4)
    async with open_socket(server, room["id"], token=alice.access) as socket:
        hello = await receive(socket)
        assert (hello["last_seq"], hello["last_rev"]) == (2, 4)


async def test_a_client_that_was_away_recovers_every_change_from_changes_after(
    server: Server,
) -> None:
    alice, bob = register_all(server, "alice", "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    sent = [post_message(server, alice, room["id"], f"m{n}") for n in range(5)]

    # Bob holds the room as of its hello, then goes away.
    async with open_socket(server, room["id"], token=bob.access) as socket:
        held_rev = (await receive(socket))["last_rev"]
    held = whole_history(server, bob, room["id"])
    assert held_rev == 5

    edit(server, alice, sent[0]["id"], "m0, edited")
    edit(server, alice, sent[0]["id"], "m0, edited twice")
    delete(server, alice, sent[3]["id"])
    post_message(server, alice, room["id"], "m5")
    edit(server, alice, sent[1]["id"], "m1, edited")

    changes = all_changes(server, bob, room["id"], after=held_rev)
    revs = [change["rev"] for change in changes]
    assert revs == sorted(set(revs))  # in rev order, each once
    assert all(rev > held_rev for rev in revs)
    # Each message once, in its current state: m0 (twice edited), m3's tombstone, m5, m1.
    assert [c["body"] for c in changes] == ["m0, edited twice", "", "m5", "m1, edited"]
    assert changes[1]["is_deleted"] is True
    for change in changes:
        held[change["id"]] = change
    assert held == whole_history(server, bob, room["id"])
    # Up to date: nothing after the newest revision.
    assert all_changes(server, bob, room["id"], after=revs[-1]) == []


async def test_changes_follow_the_rules_of_history(server: Server) -> None:
    alice, bob = register_all(server, "alice", "bob")
    public = create_room(server, alice, "public")
    hidden = server.request(
        "POST",
        "/api/v1/rooms/",
        token=alice.access,
        body={"name": "hidden", "visibility": "private"},
    ).body
    post_message(server, alice, hidden["id"], "secret")

    # Anyone who can see the room may read its changes; a private room of others is no room.
    assert (
        server.request("GET", f"/api/v1/rooms/{public['id']}/changes/", token=bob.access).status
        == 200
    )
    missing = server.request("GET", f"/api/v1/rooms/{hidden['id']}/changes/", token=bob.access)
    assert missing.status == 404
    for bad in ("-1", "x", str(2**63)):
        answer = server.request(
            "GET", f"/api/v1/rooms/{public['id']}/changes/?after={bad}", token=bob.access
        )
        assert answer.status == 400, (bad, answer)


async def test_edits_from_two_sockets_at_once_still_reach_everyone_in_rev_order(
    server: Server,
) -> None:
    alice, bob = register_all(server, "alice", "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    mine = [post_message(server, alice, room["id"], f"a{n}") for n in range(3)]

    async with (
        open_socket(server, room["id"], token=alice.access) as alice_socket,
        open_socket(server, room["id"], token=bob.access) as bob_socket,
    ):
        for socket in (alice_socket, bob_socket):
            assert (await receive(socket))["last_rev"] == 3

        async def sends(author: ClientConnection, prefix: str) -> None:
            for n in range(10):
                await send(author, {"type": "message.send", "body": f"{prefix}{n}"})

        async def edits() -> None:
            for n in range(6):
                await asyncio.to_thread(edit, server, alice, mine[n % 3]["id"], f"edit {n}")

        await asyncio.gather(sends(alice_socket, "a"), sends(bob_socket, "b"), edits())

        for socket in (alice_socket, bob_socket):
            revs: list[int] = []
            while len(revs) < 26:
                frame = await receive(socket)
                if frame["type"] in ("message.new", "message.updated"):
                    revs.append(frame["message"]["rev"])
            assert revs == list(range(4, 30)), revs
