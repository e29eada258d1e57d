"""The contract end to end: a real daphne process, plain HTTP and a real WebSocket client."""

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from tests.support.client import (
    FRAME_LIMIT,
    SECRET_KEY,
    Account,
    Server,
    assert_nothing_pending,
    close_code,
    create_room,
    history,
    join_room,
    log_in,
    open_socket,
    post_message,
    receive,
    register,
    send,
)
from tests.support.servers import StartServer

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Chat:
    """Alice owns a public room that Bob has joined."""

    server: Server
    alice: Account
    bob: Account
    room: dict[str, Any]

    @property
    def room_id(self) -> int:
        return int(self.room["id"])

    @property
    def messages_path(self) -> str:
        return f"/api/v1/rooms/{self.room_id}/messages/"


@pytest.fixture
def chat(server: Server) -> Chat:
    alice = register(server, "alice")
    bob = register(server, "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    return Chat(server, alice, bob, room)


def brief(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.username.title(),
    }


def forged_access_token(account: Account, *, expires_in: int, key: str = SECRET_KEY) -> str:
    """An access token as SimpleJWT signs it, with the expiry of our choosing."""
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + expires_in,
        "iat": now - 600,
        "jti": uuid.uuid4().hex,
        "user_id": str(account.id),
    }
    return jwt.encode(claims, key, algorithm="HS256")


async def test_members_chat_live_over_header_and_query_string_tokens(chat: Chat) -> None:
    server = chat.server
    # Logging in with the password gives tokens that work as well as the registration's.
    alice = await asyncio.to_thread(log_in, server, chat.alice)
    bob = await asyncio.to_thread(log_in, server, chat.bob)

    async with contextlib.AsyncExitStack() as sockets:
        alice_ws = await sockets.enter_async_context(
            open_socket(server, chat.room_id, token=alice.access, via="header")
        )
        hello = await receive(alice_ws)
        assert hello["type"] == "hello"
        assert hello["room"]["id"] == chat.room_id
        assert hello["user"] == brief(alice)
        assert hello["last_seq"] == 0
        assert brief(alice) in hello["online"]
        # Once Alice's socket answers a ping, her own "online" has gone out: Bob, who
        # connects next, has her in his hello and hears no presence for her.
        await assert_nothing_pending(alice_ws)

        bob_ws = await sockets.enter_async_context(
            open_socket(server, chat.room_id, token=bob.access, via="query")
        )
        bob_hello = await receive(bob_ws)
        assert bob_hello["type"] == "hello"
        assert bob_hello["user"] == brief(bob)
        assert bob_hello["last_seq"] == 0
        assert {u["id"] for u in bob_hello["online"]} == {alice.id, bob.id}
        assert await receive(alice_ws) == {
            "type": "presence",
            "room": chat.room_id,
            "user": brief(bob),
            "status": "online",
        }

        await send(alice_ws, {"type": "message.send", "body": "hi Bob", "client_id": "c-1"})
        ack = await receive(alice_ws)
        # The ack promises a commit: the message is in the history the moment it arrives.
        page = await asyncio.to_thread(history, server, alice, chat.messages_path)
        assert ack["type"] == "message.ack"
        assert ack["client_id"] == "c-1"
        message = ack["message"]
        assert message["seq"] == 1
        assert message["room"] == chat.room_id
        assert message["body"] == "hi Bob"
        assert message["client_id"] == "c-1"
        assert message["author"] == brief(alice)
        assert message["is_deleted"] is False
        assert message["edited_at"] is None
        assert page["results"] == [message]
        assert await receive(alice_ws) == {
            "type": "message.new",
            "room": chat.room_id,
            "message": message,
        }
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": chat.room_id,
            "message": message,
        }

        await send(bob_ws, {"type": "typing", "is_typing": True})
        assert await receive(alice_ws) == {
            "type": "typing",
            "room": chat.room_id,
            "user": brief(bob),
            "is_typing": True,
        }
        await assert_nothing_pending(bob_ws)  # typing is not echoed to its sender

        # A resend with the same client_id (its ack was lost, say) stores nothing new.
        await send(alice_ws, {"type": "message.send", "body": "hi again", "client_id": "c-1"})
        assert await receive(alice_ws) == {
            "type": "message.ack",
            "client_id": "c-1",
            "message": message,
        }
        await assert_nothing_pending(alice_ws)
        await assert_nothing_pending(bob_ws)
        page = await asyncio.to_thread(history, server, alice, chat.messages_path)
        assert page["results"] == [message]


async def test_a_reconnecting_client_sees_the_gap_and_catches_up_with_after(chat: Chat) -> None:
    server, alice, bob = chat.server, chat.alice, chat.bob
    async with open_socket(server, chat.room_id, token=bob.access) as bob_ws:
        assert (await receive(bob_ws))["last_seq"] == 0
        first = await asyncio.to_thread(post_message, server, alice, chat.room_id, "one")
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": chat.room_id,
            "message": first,
        }
    last_seen = first["seq"]

    missed = [
        await asyncio.to_thread(post_message, server, alice, chat.room_id, body)
        for body in ("two", "three", "four")
    ]

    async with open_socket(server, chat.room_id, token=bob.access) as bob_ws:
        hello = await receive(bob_ws)
        assert hello["last_seq"] == last_seen + len(missed)
        page = await asyncio.to_thread(
            history, server, bob, f"{chat.messages_path}?after={last_seen}"
        )
        assert page["results"] == missed
        assert page["next"] is None
        # And the socket is live again.
        latest = await asyncio.to_thread(post_message, server, alice, chat.room_id, "five")
        assert latest["seq"] == hello["last_seq"] + 1
        assert await receive(bob_ws) == {
            "type": "message.new",
            "room": chat.room_id,
            "message": latest,
        }


async def test_a_bad_token_is_closed_with_4401(chat: Chat) -> None:
    server, alice = chat.server, chat.alice
    bad_tokens = {
        "garbage in the header": ("not-a-jwt", "header"),
        "garbage in the query string": ("not-a-jwt", "query"),
        "a refresh token": (alice.refresh, "header"),
        "an expired access token": (forged_access_token(alice, expires_in=-60), "header"),
        "a token signed with another key": (
            forged_access_token(alice, expires_in=300, key="another-key-" + "x" * 32),
            "query",
        ),
        "no token at all": (None, "header"),
    }
    for case, (token, via) in bad_tokens.items():
        async with open_socket(server, chat.room_id, token=token, via=via) as socket:
            assert await close_code(socket) == 4401, case

    # Control: the forger is right, so the expiry (not the forging) is what failed above.
    valid = forged_access_token(alice, expires_in=300)
    async with open_socket(server, chat.room_id, token=valid) as socket:
        assert (await receive(socket))["type"] == "hello"


async def test_a_foreign_origin_is_refused_and_an_own_or_missing_origin_accepted(
    chat: Chat,
) -> None:
    server, alice = chat.server, chat.alice
    with pytest.raises(InvalidStatus) as refused:
        async with open_socket(
            server, chat.room_id, token=alice.access, origin="https://evil.example.com"
        ):
            pass
    assert refused.value.response.status_code == 403

    for origin in (None, server.http_url, f"http://localhost:{server.port}"):
        async with open_socket(server, chat.room_id, token=alice.access, origin=origin) as ws:
            assert (await receive(ws))["type"] == "hello", origin


def _frame_of(size: int, char: str = "x") -> str:
    """A ``message.send`` frame of exactly ``size`` bytes of UTF-8, padded with ``char``."""
    skeleton = json.dumps({"type": "message.send", "body": ""})
    padding, remainder = divmod(size - len(skeleton.encode()), len(char.encode()))
    body = char * padding + "x" * remainder
    frame = json.dumps({"type": "message.send", "body": body}, ensure_ascii=False)
    assert len(frame.encode()) == size, (len(frame.encode()), size)
    return frame


async def test_a_frame_over_16_kib_closes_the_socket_with_4413(chat: Chat) -> None:
    server, alice = chat.server, chat.alice
    async with open_socket(server, chat.room_id, token=alice.access) as ws:
        await receive(ws)  # hello
        # At the limit the frame is read: its body is too long, the socket stays open.
        await ws.send(_frame_of(FRAME_LIMIT))
        error = await receive(ws)
        assert (error["type"], error["code"]) == ("error", "validation_error")
        await ws.send(_frame_of(FRAME_LIMIT + 1))
        assert await close_code(ws) == 4413

    # The limit counts bytes: fewer than 16,384 characters can still be over it.
    async with open_socket(server, chat.room_id, token=alice.access) as ws:
        await receive(ws)  # hello
        frame = _frame_of(FRAME_LIMIT + 2, char="€")
        assert len(frame) < FRAME_LIMIT
        await ws.send(frame)
        assert await close_code(ws) == 4413

    page = await asyncio.to_thread(history, server, alice, chat.messages_path)
    assert page["results"] == []


def test_history_pages_show_every_message_once_while_new_ones_arrive(chat: Chat) -> None:
    server, alice = chat.server, chat.alice
    sent = [post_message(server, alice, chat.room_id, f"message {n}") for n in range(1, 251)]
    assert [m["seq"] for m in sent] == list(range(1, 251))
    last_seq = 250

    def walk(url: str) -> list[int]:
        nonlocal last_seq
        seen: list[int] = []
        while True:
            page = history(server, alice, url)
            assert len(page["results"]) <= 50
            seen.extend(m["seq"] for m in page["results"])
            if page["next"] is None:
                return seen
            url = page["next"]
            # New messages land between two page fetches, as they do in a busy room.
            for _ in range(2):
                last_seq = post_message(server, alice, chat.room_id, "meanwhile")["seq"]

    newest_first = walk(f"{chat.messages_path}?limit=50")
    assert newest_first == list(range(250, 0, -1))
    assert last_seq == 250 + 2 * 4  # four next links followed, five full pages

    oldest_first = walk(f"{chat.messages_path}?after=0&limit=50")
    assert oldest_first == list(range(1, last_seq + 1))


async def test_a_message_sent_on_one_server_reaches_a_socket_on_another(
    postgres: None, redis_url: str, start_server: StartServer
) -> None:
    server_a, server_b = start_server(), start_server()
    alice = await asyncio.to_thread(register, server_a, "alice")
    bob = await asyncio.to_thread(register, server_b, "bob")
    room = await asyncio.to_thread(create_room, server_a, alice, "general")
    await asyncio.to_thread(join_room, server_b, bob, room["id"])

    async with open_socket(server_a, room["id"], token=alice.access) as alice_ws:
        assert (await receive(alice_ws))["type"] == "hello"
        await assert_nothing_pending(alice_ws)
        async with open_socket(server_b, room["id"], token=bob.access) as bob_ws:
            bob_hello = await receive(bob_ws)
            # Presence lives in Redis: B knows that Alice is online on A.
            assert {u["id"] for u in bob_hello["online"]} == {alice.id, bob.id}
            assert await receive(alice_ws) == {
                "type": "presence",
                "room": room["id"],
                "user": brief(bob),
                "status": "online",
            }

            await send(alice_ws, {"type": "message.send", "body": "across", "client_id": "x-1"})
            ack = await receive(alice_ws)
            assert ack["type"] == "message.ack"
            assert await receive(bob_ws) == {
                "type": "message.new",
                "room": room["id"],
                "message": ack["message"],
            }
