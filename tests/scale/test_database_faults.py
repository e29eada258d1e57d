"""PostgreSQL dies under a running server, and comes back.

The test's own cluster replaces the suite's database (``e2e_database`` is overridden
below), so it can be stopped and started at will; the channel layer is the suite's
(Redis when ``REDIS_URL`` is set, else in memory). While the database is away, a send
gets an ``unavailable`` error frame and nothing is stored, the socket stays open, a new
socket is closed with 4503, REST answers a JSON 5xx and ``/healthz`` names the
database. Once it is back, the same socket sends again: the server reconnects by itself
(``CONN_HEALTH_CHECKS``).
"""

import asyncio
import contextlib
from typing import Any

import pytest

from tests.scale.helpers import (
    all_messages,
    answer_to,
    frames_until,
    new_seqs,
    opening_close_code,
    ping,
)
from tests.support.client import (
    Server,
    create_room,
    join_room,
    open_socket,
    post_message,
    receive,
    register,
)
from tests.support.servers import StartServer, _migrate, _server_env
from tests.support.services import PostgresCluster

pytestmark = pytest.mark.scale

SENDS_DURING_OUTAGE = 3


@pytest.fixture
def e2e_database(
    private_postgres: PostgresCluster, e2e_redis_url: str, e2e_channel_prefix: str
) -> str:
    """The servers of this test use the test's own cluster, migrated."""
    env = _server_env(
        database_url=private_postgres.url,
        redis_url=e2e_redis_url,
        channel_prefix=e2e_channel_prefix,
        extra={},
    )
    _migrate(env)
    return private_postgres.url


def _assert_clean_server_error(
    server: Server, method: str, path: str, *, token: str, body: Any = None
) -> None:
    """A 5xx in the API's JSON shape: no HTML page, no traceback."""
    answer = server.request(method, path, token=token, body=body)
    assert 500 <= answer.status < 600, answer
    assert answer.headers["content-type"] == "application/json", answer
    assert set(answer.body) == {"detail"}, answer
    assert "Traceback" not in answer.body["detail"], answer


async def test_a_database_outage_refuses_sends_keeps_sockets_open_and_recovers_by_itself(
    private_postgres: PostgresCluster, start_server: StartServer
) -> None:
    server = start_server(allow_errors=True)  # the failed queries are logged with tracebacks
    alice = await asyncio.to_thread(register, server, "alice")
    bob = await asyncio.to_thread(register, server, "bob")
    room = await asyncio.to_thread(create_room, server, alice, "general")
    room_id = room["id"]
    await asyncio.to_thread(join_room, server, bob, room_id)
    messages_path = f"/api/v1/rooms/{room_id}/messages/"

    async with contextlib.AsyncExitStack() as sockets:
        alice_ws, bob_ws = [
            await sockets.enter_async_context(open_socket(server, room_id, token=a.access))
            for a in (alice, bob)
        ]
        for ws in (alice_ws, bob_ws):
            assert (await receive(ws))["type"] == "hello"
        before = await answer_to(
            alice_ws, {"type": "message.send", "body": "before", "client_id": "before"}
        )
        assert before["type"] == "message.ack"

        await asyncio.to_thread(private_postgres.stop)

        frames = [
            {"type": "message.send", "body": f"during {n}", "client_id": f"during-{n}"}
            for n in range(SENDS_DURING_OUTAGE)
        ]
        for frame in frames:
            answer = await answer_to(alice_ws, frame)
            assert answer["type"] == "error", answer
            assert answer["code"] == "unavailable", answer
            assert answer["client_id"] == frame["client_id"]
        await ping(alice_ws)
        await ping(bob_ws)
        # A socket opened now cannot be served: closed with 4503, "try again later".
        assert await opening_close_code(server, room_id, bob) == 4503

        await asyncio.to_thread(
            _assert_clean_server_error,
            server,
            "POST",
            messages_path,
            token=bob.access,
            body={"body": "over REST"},
        )
        await asyncio.to_thread(
            _assert_clean_server_error, server, "GET", messages_path, token=bob.access
        )
        health = await asyncio.to_thread(server.request, "GET", "/healthz")
        assert (health.status, health.body) == (
            503,
            {"status": "unavailable", "database": "unavailable", "channel_layer": "ok"},
        )

        await asyncio.to_thread(private_postgres.start)

        # Nothing that got an error frame was stored.
        stored = await asyncio.to_thread(all_messages, server, alice, room_id)
        assert stored == [before["message"]]

        # The client resends what got no ack, as API.md tells it to; the very first
        # send after the restart works on the same socket, and the room hears it.
        for frame in frames:
            answer = await answer_to(alice_ws, frame)
            assert answer["type"] == "message.ack", answer
            assert answer["client_id"] == frame["client_id"]
        last_seq = before["message"]["seq"] + SENDS_DURING_OUTAGE
        heard = await frames_until(bob_ws, lambda got: last_seq in new_seqs(got), within=5)
        assert new_seqs(heard) == list(range(before["message"]["seq"] + 1, last_seq + 1))

        by_rest = await asyncio.to_thread(post_message, server, bob, room_id, "over REST")
        assert by_rest["seq"] == last_seq + 1
        health = await asyncio.to_thread(server.request, "GET", "/healthz")
        assert health.status == 200, health

    stored = await asyncio.to_thread(all_messages, server, alice, room_id)
    assert [m["body"] for m in stored] == [
        "before",
        *(f["body"] for f in frames),
        "over REST",
    ]
    assert [m["seq"] for m in stored] == list(range(1, last_seq + 2))
