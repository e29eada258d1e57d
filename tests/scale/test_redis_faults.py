"""Redis dies under a running server and comes back empty, or hangs for a while.

The test's own ``redis-server`` replaces the shared one (``e2e_redis_url`` is overridden
below), so it can be killed and restarted at will. Redis holds only what can be lost:
broadcasts, group memberships, presence and throttle counters. While it is away,
messages are still stored and acknowledged (or refused, never stored silently), REST
works and ``/healthz`` says what is wrong; once it is back, the same open sockets hear
the room again within the re-subscribe interval, and a reconnecting client catches up
with ``?after=``.
"""

import asyncio
import contextlib
import json
import select
import subprocess
import sys
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.scale.helpers import (
    all_messages,
    answer_to,
    brief,
    frames_until,
    new_seqs,
    online_ids,
    opening_close_code,
    ping,
    read_until,
)
from tests.support.client import (
    PASSWORD,
    Account,
    Server,
    create_room,
    join_room,
    open_socket,
    open_user_socket,
    post_message,
    receive,
    register,
    register_all,
)
from tests.support.servers import PROJECT_ROOT, StartServer, _server_env
from tests.support.services import RedisServer

pytestmark = pytest.mark.scale

# Each process re-joins its groups and refreshes its sockets' presence this often
# (CHAT_REFRESH_SECONDS, so that the test need not wait the production default of 30 s).
REFRESH_SECONDS = 1.0
RECOVERY_TIMEOUT = 15.0
DELIVERY_TIMEOUT = 5.0
SENDS_DURING_OUTAGE = 5
BURST = 8  # concurrent REST sends
PROBE_WIDTH = 4  # pooled connections warmed per Redis client
PROBE_TIMEOUT = 20.0
# Redis is stopped (SIGSTOP) this long; each ack and 201 meanwhile must come within
# HUNG_ANSWER_SECONDS (the publish timeout is 1 s), not when Redis wakes up.
HANG_SECONDS = 6.0
HUNG_ANSWER_SECONDS = 3.0
# Sent while Redis is down into a room that then falls quiet: more than the 100 messages
# that one gap-fill read returns.
QUIET_MISSED = 105


@pytest.fixture
def e2e_redis_url(private_redis: RedisServer) -> str:
    """The servers of these tests use the test's own Redis, not the shared one."""
    return private_redis.url


def _health(server: Server) -> tuple[int, Any]:
    answer = server.request("GET", "/healthz", timeout=10)
    return answer.status, answer.body


async def _healthy_within(server: Server, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (status := (await asyncio.to_thread(_health, server))[0]) != 200:
        assert time.monotonic() < deadline, f"/healthz still {status} after {seconds} s"
        await asyncio.sleep(0.2)


async def _post_burst(
    server: Server, authors: tuple[Account, ...], room_id: int, label: str
) -> list[dict[str, Any]]:
    """``BURST`` messages sent at once over REST, taking turns among ``authors``."""
    return list(
        await asyncio.gather(
            *(
                asyncio.to_thread(
                    post_message, server, authors[n % len(authors)], room_id, f"{label} {n}"
                )
                for n in range(BURST)
            )
        )
    )


async def _answer_or_fail(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    try:
        return await answer_to(ws, frame)
    except ConnectionClosed as closed:
        pytest.fail(
            f"the socket was closed ({closed.rcvd}) instead of answering {frame}: "
            "an open socket must survive a Redis outage"
        )


async def test_a_redis_crash_loses_no_acknowledged_message_and_sockets_hear_again_after_restart(
    private_redis: RedisServer, start_server: StartServer
) -> None:
    server = start_server(
        allow_errors=True,  # the failed broadcasts are logged with their tracebacks
        env={"CHAT_REFRESH_SECONDS": str(REFRESH_SECONDS)},
    )
    alice, bob, carol = [
        await asyncio.to_thread(register, server, name) for name in ("alice", "bob", "carol")
    ]
    room = await asyncio.to_thread(create_room, server, alice, "general")
    room_id = room["id"]
    for member in (bob, carol):
        await asyncio.to_thread(join_room, server, member, room_id)

    async with contextlib.AsyncExitStack() as sockets:
        # Alice and Bob stay connected throughout; Carol drops out during the outage.
        alice_ws, bob_ws = [
            await sockets.enter_async_context(open_socket(server, room_id, token=a.access))
            for a in (alice, bob)
        ]
        async with open_socket(server, room_id, token=carol.access) as carol_ws:
            for ws in (alice_ws, bob_ws, carol_ws):
                assert (await receive(ws))["type"] == "hello"
            # A burst of concurrent sends, so that the server holds several pooled
            # connections to Redis when it dies (each goes stale).
            before = await _post_burst(server, (alice, bob), room_id, "before")
            first_seq = len(before)
            for ws in (alice_ws, bob_ws, carol_ws):
                frames = await frames_until(
                    ws, lambda got: first_seq in new_seqs(got), within=DELIVERY_TIMEOUT
                )
                assert new_seqs(frames) == list(range(1, first_seq + 1))

            private_redis.kill()

        # Each send is either acknowledged (and stored) or refused with an error frame
        # (and not stored); the socket answers either way and stays open.
        answers = {}
        for n in range(SENDS_DURING_OUTAGE):
            client_id = f"outage-{n}"
            frame = {"type": "message.send", "body": f"during {n}", "client_id": client_id}
            answers[client_id] = await _answer_or_fail(alice_ws, frame)
        for answer in answers.values():
            assert answer["type"] in ("message.ack", "error"), answer
        await ping(alice_ws)
        await ping(bob_ws)
        # A socket opened now cannot subscribe: closed with 4503, "try again later".
        assert await opening_close_code(server, room_id, carol) == 4503

        # REST needs no Redis to store a message.
        by_rest = await asyncio.to_thread(post_message, server, bob, room_id, "over REST")

        status, body = await asyncio.to_thread(_health, server)
        assert (status, body) == (
            503,
            {"status": "unavailable", "database": "ok", "channel_layer": "unavailable"},
        )

        # Back, and empty: no group memberships, no presence.
        private_redis.start()
        await _healthy_within(server, RECOVERY_TIMEOUT)

        # The open sockets re-join their group within the refresh interval. Until they
        # do, broadcasts reach nobody; the first one that does arrive shows a seq gap,
        # which the socket fills from the database, so it still hears every message.
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        heard: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
        while True:
            probe = await asyncio.to_thread(post_message, server, alice, room_id, "probe")
            target = probe["seq"]
            if await read_until(
                bob_ws,
                heard["bob"],
                lambda got, target=target: target in new_seqs(got),
                within=2 * REFRESH_SECONDS,
            ):
                break
            assert time.monotonic() < deadline, (
                f"open sockets heard nothing {RECOVERY_TIMEOUT} s after Redis came back: "
                f"{heard['bob']}"
            )
        # Another concurrent burst: every pooled connection is used again, and none of
        # the broadcasts may be lost to a connection that went stale in the crash
        # (the last one would be: nothing after it shows the gap).
        after = await _post_burst(server, (alice, bob), room_id, "after")
        last_seq = max(m["seq"] for m in after)
        for name, ws in (("alice", alice_ws), ("bob", bob_ws)):
            assert await read_until(
                ws, heard[name], lambda got: last_seq in new_seqs(got), within=DELIVERY_TIMEOUT
            ), f"{name} missed the end of the burst: {new_seqs(heard[name])}"

        stored = await asyncio.to_thread(all_messages, server, alice, room_id)
        assert [m["seq"] for m in stored] == list(range(1, last_seq + 1))
        stored_by_client_id = {m["client_id"]: m for m in stored if m["client_id"]}
        for client_id, answer in answers.items():
            if answer["type"] == "message.ack":
                assert stored_by_client_id[client_id] == answer["message"]
            else:
                assert client_id not in stored_by_client_id, answer
        assert by_rest in stored

        for name, frames in heard.items():
            # Everything after the first burst, in order, once: the broadcasts lost in
            # the outage were read back from the database.
            assert new_seqs(frames) == list(range(first_seq + 1, last_seq + 1)), name

        # Carol reconnects: hello tells her she missed messages, ?after= gives them all,
        # and presence is back (the open sockets refreshed their entries).
        async with open_socket(server, room_id, token=carol.access) as carol_ws:
            hello = await receive(carol_ws)
            assert hello["last_seq"] == last_seq
            assert online_ids(hello) == {alice.id, bob.id, carol.id}
            missed = await asyncio.to_thread(all_messages, server, carol, room_id, after=first_seq)
            assert missed == stored[first_seq:]
            latest = await asyncio.to_thread(post_message, server, bob, room_id, "welcome back")
            frames = await frames_until(
                carol_ws, lambda got: latest["seq"] in new_seqs(got), within=DELIVERY_TIMEOUT
            )
            assert new_seqs(frames) == [latest["seq"]]
            assert brief(carol) == hello["user"]


async def _timed(answer: Any) -> tuple[float, Any]:
    """Awaits ``answer``; how long it took, and what it gave."""
    started = time.monotonic()
    result = await answer
    return time.monotonic() - started, result


async def test_a_hung_redis_delays_no_acknowledgement_and_sockets_catch_up_after(
    private_redis: RedisServer, start_server: StartServer
) -> None:
    server = start_server(
        allow_errors=True,  # the broadcasts that time out are logged
        env={"CHAT_REFRESH_SECONDS": str(REFRESH_SECONDS), "CHAT_PUBLISH_TIMEOUT_SECONDS": "1.0"},
    )
    alice, bob = await asyncio.to_thread(register_all, server, "alice", "bob")
    room_id = (await asyncio.to_thread(create_room, server, alice, "general"))["id"]
    await asyncio.to_thread(join_room, server, bob, room_id)

    async with (
        open_socket(server, room_id, token=alice.access) as alice_ws,
        open_socket(server, room_id, token=bob.access) as bob_ws,
    ):
        for ws in (alice_ws, bob_ws):
            assert (await receive(ws))["type"] == "hello"
        first = await asyncio.to_thread(post_message, server, alice, room_id, "before")
        for ws in (alice_ws, bob_ws):
            await frames_until(ws, lambda got: first["seq"] in new_seqs(got), within=5)

        # Hung, not dead: every connection stays open and every command waits.
        private_redis.pause()
        hung_at = time.monotonic()
        try:
            answers = []
            for n in range(SENDS_DURING_OUTAGE):
                frame = {"type": "message.send", "body": f"hung {n}", "client_id": f"hung-{n}"}
                took, answer = await _timed(_answer_or_fail(alice_ws, frame))
                assert answer["type"] == "message.ack", answer
                assert took < HUNG_ANSWER_SECONDS, f"ack {n} took {took:.1f} s"
                answers.append(answer)
            took, by_rest = await _timed(
                asyncio.to_thread(post_message, server, bob, room_id, "over REST")
            )
            assert took < HUNG_ANSWER_SECONDS, f"the 201 took {took:.1f} s"
            # Stored, whatever became of their broadcasts (reading needs no Redis).
            stored = await asyncio.to_thread(all_messages, server, bob, room_id)
            assert [m["seq"] for m in stored] == list(range(1, by_rest["seq"] + 1))
            assert [a["message"] for a in answers] + [by_rest] == stored[1:]
            await asyncio.sleep(max(0.0, HANG_SECONDS - (time.monotonic() - hung_at)))
        finally:
            private_redis.resume()

        # The broadcasts that timed out are lost; the next one shows the gap, which
        # every socket fills from the database, in order.
        probe = await asyncio.to_thread(post_message, server, alice, room_id, "after")
        for ws in (alice_ws, bob_ws):
            frames = await frames_until(
                ws, lambda got: probe["seq"] in new_seqs(got), within=RECOVERY_TIMEOUT
            )
            assert new_seqs(frames) == list(range(first["seq"] + 1, probe["seq"] + 1))


async def test_open_sockets_in_a_quiet_room_catch_up_after_redis_comes_back_empty(
    private_redis: RedisServer, start_server: StartServer
) -> None:
    server = start_server(
        allow_errors=True,  # the lost broadcasts are logged with their tracebacks
        env={"CHAT_REFRESH_SECONDS": str(REFRESH_SECONDS)},
    )
    alice, bob = await asyncio.to_thread(register_all, server, "alice", "bob")
    room_id = (await asyncio.to_thread(create_room, server, alice, "quiet"))["id"]
    await asyncio.to_thread(join_room, server, bob, room_id)

    async with (
        open_socket(server, room_id, token=alice.access) as alice_ws,
        open_socket(server, room_id, token=bob.access) as bob_ws,
        open_user_socket(server, token=bob.access) as bob_device,
    ):
        for ws in (alice_ws, bob_ws, bob_device):
            assert (await receive(ws))["type"] == "hello"

        private_redis.kill()
        # Stored, their broadcasts lost: more than one page of the socket's gap fill.
        for n in range(QUIET_MISSED):
            await asyncio.to_thread(post_message, server, alice, room_id, f"missed {n}")
        private_redis.start()

        # Nobody says anything more: the sockets still get every message, in order, the
        # user socket (one stream per room) as the room sockets.
        for ws in (alice_ws, bob_ws, bob_device):
            frames = await frames_until(
                ws, lambda got: QUIET_MISSED in new_seqs(got), within=RECOVERY_TIMEOUT
            )
            assert new_seqs(frames) == list(range(1, QUIET_MISSED + 1))


async def _close_code_after(ws: ClientConnection, frames: list[dict[str, Any]]) -> int:
    """Reads ``ws`` into ``frames`` until the server closes it; the code it closed with."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):  # no frame for a while: read on
                frames.append(await receive(ws))
    except ConnectionClosed as closed:
        received = closed.rcvd
    else:
        raise AssertionError(f"still open after {RECOVERY_TIMEOUT} s; frames: {frames}")
    assert received is not None, f"closed without a close frame; frames: {frames}"
    return received.code


async def test_a_member_removed_while_redis_is_down_hears_nothing_more_of_the_private_room(
    private_redis: RedisServer, start_server: StartServer
) -> None:
    server = start_server(
        allow_errors=True,  # the lost broadcasts are logged with their tracebacks
        env={"CHAT_REFRESH_SECONDS": str(REFRESH_SECONDS)},
    )
    alice, bob = await asyncio.to_thread(register_all, server, "alice", "bob")
    created = await asyncio.to_thread(
        server.request,
        "POST",
        "/api/v1/rooms/",
        token=alice.access,
        body={"name": "secret", "visibility": "private"},
    )
    assert created.status == 201, created
    room_id = created.body["id"]
    added = await asyncio.to_thread(
        server.request,
        "POST",
        f"/api/v1/rooms/{room_id}/members/",
        token=alice.access,
        body={"username": bob.username},
    )
    assert added.status == 201, added

    async with (
        open_socket(server, room_id, token=alice.access) as alice_ws,
        open_socket(server, room_id, token=bob.access) as bob_ws,
    ):
        for ws in (alice_ws, bob_ws):
            assert (await receive(ws))["type"] == "hello"

        private_redis.kill()
        # The removal is committed; its broadcast (member.removed) is lost.
        removed = await asyncio.to_thread(
            server.request,
            "DELETE",
            f"/api/v1/rooms/{room_id}/members/{bob.id}/",
            token=alice.access,
        )
        assert removed.status == 204, removed
        private_redis.start()
        await _healthy_within(server, RECOVERY_TIMEOUT)

        # Alice's socket hears the room again (its process has re-joined the group)...
        alice_frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while True:
            said = await asyncio.to_thread(post_message, server, alice, room_id, "after bob")
            if await read_until(
                alice_ws,
                alice_frames,
                lambda got, seq=said["seq"]: seq in new_seqs(got),
                within=2 * REFRESH_SECONDS,
            ):
                break
            assert time.monotonic() < deadline, f"alice heard nothing: {alice_frames}"

        # ...and Bob's, in the same process, was closed as the lost broadcast would have
        # closed it, having heard nothing said after his removal.
        bob_frames: list[dict[str, Any]] = []
        assert await _close_code_after(bob_ws, bob_frames) == 4403
        assert new_seqs(bob_frames) == [], bob_frames


async def test_logging_in_and_signing_up_work_while_redis_is_down(
    private_redis: RedisServer, start_server: StartServer
) -> None:
    server = start_server(allow_errors=True)
    alice = await asyncio.to_thread(register, server, "alice")

    private_redis.kill()

    # The throttles keep their counters in Redis; they must not lock everybody out.
    login = await asyncio.to_thread(
        server.request,
        "POST",
        "/api/v1/auth/token/",
        body={"username": alice.username, "password": PASSWORD},
    )
    assert login.status == 200, login
    newcomer = await asyncio.to_thread(register, server, "bob")
    assert newcomer.username == "bob"


# Runs in a process of its own on the servers' settings (config.settings.base with the
# test's REDIS_URL): warms WIDTH pooled connections in each of the three Redis clients
# the server uses, waits while the test restarts Redis, then uses them all again.
_CLIENTS_PROBE = r"""
import asyncio, json, sys
import django

django.setup()
from channels.layers import get_channel_layer
from django.core.cache import cache
from realtime.presence import get_presence_store

WIDTH = int(sys.argv[1])


async def use_all(layer, store):
    calls = [layer.group_send("probe", {"type": "probe"}) for _ in range(WIDTH)]
    calls += [store.refresh(n, f"probe-{n}") for n in range(WIDTH)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    for _ in range(2):  # the cache client holds one connection: use it, then again
        try:
            cache.get("probe")
        except Exception as error:
            failed.append(f"cache {type(error).__name__}: {error}")
    return failed


async def main():
    layer, store = get_channel_layer(), get_presence_store()
    print(json.dumps(await use_all(layer, store)), flush=True)
    sys.stdin.readline()
    print(json.dumps(await use_all(layer, store)), flush=True)


asyncio.run(main())
"""


def _probe_line(probe: subprocess.Popen[str]) -> list[str]:
    """The probe's next report: the commands that failed (an empty list if none did)."""
    assert probe.stdout is not None
    ready, _, _ = select.select([probe.stdout], [], [], PROBE_TIMEOUT)
    line = probe.stdout.readline() if ready else ""
    if not line:
        probe.kill()
        _, errors = probe.communicate(timeout=PROBE_TIMEOUT)
        pytest.fail(f"the probe said nothing within {PROBE_TIMEOUT} s:\n{errors}")
    failures: list[str] = json.loads(line)
    return failures


def test_no_redis_command_is_lost_to_a_connection_that_died_in_a_restart(
    private_redis: RedisServer, e2e_channel_prefix: str
) -> None:
    env = _server_env(
        database_url="sqlite:///:memory:",  # the probe never touches it
        redis_url=private_redis.url,
        channel_prefix=e2e_channel_prefix,
        extra={},
    )
    probe = subprocess.Popen(
        [sys.executable, "-c", _CLIENTS_PROBE, str(PROBE_WIDTH)],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert probe.stdin is not None
        assert _probe_line(probe) == []
        private_redis.kill()
        private_redis.start()
        probe.stdin.write("restarted\n")
        probe.stdin.flush()
        # Each pooled connection went stale in the crash. A client that sends on it
        # once, fails and only then reconnects loses that command: a broadcast, a
        # presence refresh, a throttle check. They must reconnect and retry instead.
        after_restart = _probe_line(probe)
        assert after_restart == [], "\n".join(after_restart)
    finally:
        probe.kill()
        probe.communicate(timeout=PROBE_TIMEOUT)
