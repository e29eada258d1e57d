"""API.md "Limits" and close frames against a real daphne: what only the transport can do.

Floods and slow readers as an attacker would run them, each bounded in time: a socket
pipelining sends, one that never reads, one that never answers pings, oversized frames,
and paths that are no socket of ours.
"""

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from tests.support.client import (
    HOST,
    Server,
    close_frame,
    create_room,
    join_room,
    open_socket,
    receive,
    register_all,
    send,
)
from tests.support.servers import StartServer

pytestmark = pytest.mark.e2e

# The project's defaults (config/settings/base.py), which the other e2e servers raise.
DEFAULT_LIMITS = {
    "CHAT_FRAME_RATE": "20",
    "CHAT_FRAME_BURST": "60",
    "CHAT_FLOOD_CLOSE_FRAMES": "1000",
    "CHAT_MESSAGE_RATE": "5",
    "CHAT_MESSAGE_BURST": "10",
}


def rss_mib(server: Server) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def ack_time(socket: ClientConnection, client_id: str) -> float:
    started = time.monotonic()
    await send(socket, {"type": "message.send", "body": "still here", "client_id": client_id})
    while True:
        frame = await receive(socket)
        if frame["type"] == "message.ack" and frame["client_id"] == client_id:
            return time.monotonic() - started


async def test_a_socket_pipelining_sends_is_refused_then_closed_and_bystanders_are_served(
    start_server: StartServer,
) -> None:
    server = start_server(env=DEFAULT_LIMITS)
    attacker, bystander = await asyncio.to_thread(register_all, server, "mallory", "bob")
    attack_room = (await asyncio.to_thread(create_room, server, attacker, "flood"))["id"]
    quiet_room = (await asyncio.to_thread(create_room, server, bystander, "quiet"))["id"]
    body = "x" * 4000
    rss_before = rss_mib(server)

    async with (
        open_socket(server, attack_room, token=attacker.access) as flood,
        open_socket(server, quiet_room, token=bystander.access) as calm,
    ):
        assert (await receive(flood))["type"] == "hello"
        assert (await receive(calm))["type"] == "hello"

        async def pipeline() -> None:
            with contextlib.suppress(ConnectionClosed):
                for index in range(20_000):
                    await flood.send(
                        json.dumps({"type": "message.send", "body": body, "client_id": f"f{index}"})
                    )

        pumping = asyncio.create_task(pipeline())
        await asyncio.sleep(0.5)
        waits = [await ack_time(calm, f"b{index}") for index in range(5)]
        code, reason = await close_frame(flood, within=20)
        await pumping

        assert code == 4429, (code, reason)
        assert reason
        assert max(waits) < 1.0, waits
        # The server never held the flood: 20,000 frames of 4 KB are 80 MB.
        assert rss_mib(server) - rss_before < 60
        # It still answers: the bystander's next send is acked.
        assert await ack_time(calm, "after") < 1.0

    stored = server.request(
        "GET", f"/api/v1/rooms/{attack_room}/messages/?limit=100", token=attacker.access
    )
    # Only what the room's limit let through was stored (its burst, and a few more).
    assert len(stored.body["results"]) <= 20


async def test_a_socket_that_never_reads_is_closed_with_4408(start_server: StartServer) -> None:
    server = start_server(env={"CHAT_MAX_UNSENT_BYTES": str(256 * 1024)})
    talker, sleeper = await asyncio.to_thread(register_all, server, "talker", "sleeper")
    room = (await asyncio.to_thread(create_room, server, talker, "busy"))["id"]
    await asyncio.to_thread(join_room, server, sleeper, room)
    rss_before = rss_mib(server)

    async with (
        open_socket(server, room, token=talker.access) as loud,
        # Reads at most one frame ahead of the application: the kernel's buffers fill,
        # then the server's.
        connect(
            server.ws_url(room),
            additional_headers={"Authorization": f"Bearer {sleeper.access}"},
            max_queue=1,
            proxy=None,
        ) as asleep,
    ):
        assert (await receive(loud))["type"] == "hello"
        body = "z" * 4000
        offline = None
        for batch in range(60):  # at most 60 x 100 messages of 4 KB: 24 MB
            for index in range(100):
                await send(
                    loud, {"type": "message.send", "body": body, "client_id": f"{batch}-{index}"}
                )
            while True:
                frame = await receive(loud)
                if frame["type"] == "presence" and frame["status"] == "offline":
                    offline = frame
                    break
                if (
                    frame["type"] == "message.new"
                    and frame["message"]["client_id"] == f"{batch}-99"
                ):
                    break
            if offline is not None:
                break

        assert offline is not None, "the server never gave up on the sleeping socket"
        assert offline["user"]["id"] == sleeper.id
        assert rss_mib(server) - rss_before < 60
        # The sleeper wakes up: behind what was waiting for it is the close frame.
        code, reason = await close_frame(asleep, within=10)
        assert (code, reason) == (4408, "not reading")


async def test_the_server_pings_on_a_timer_whatever_the_client_sends(
    start_server: StartServer,
) -> None:
    server = start_server(args=["--ping-interval", "1", "--ping-timeout", "1"])
    (alice,) = await asyncio.to_thread(register_all, server, "alice")
    room = (await asyncio.to_thread(create_room, server, alice, "pings"))["id"]

    async with open_socket(server, room, token=alice.access) as socket:
        assert (await receive(socket))["type"] == "hello"
        # A client that is gone in all but name: it sends, but never answers a ping.
        protocol = socket.protocol
        send_frame = protocol.send_frame

        def without_pongs(frame: Frame) -> None:
            if frame.opcode is not Opcode.PONG:
                send_frame(frame)

        protocol.send_frame = without_pongs  # type: ignore[method-assign]
        with pytest.raises(ConnectionClosed):
            await keep_sending_pings(socket, within=15)


async def keep_sending_pings(socket: ClientConnection, within: float) -> None:
    """Sends a ping frame every 0.3 s and reads its pong, until the socket closes."""
    async with asyncio.timeout(within):
        while True:
            await send(socket, {"type": "ping"})
            await socket.recv()
            await asyncio.sleep(0.3)


async def test_a_frame_over_the_transport_limit_closes_with_1009(server: Server) -> None:
    (alice,) = await asyncio.to_thread(register_all, server, "alice")
    room = (await asyncio.to_thread(create_room, server, alice, "big"))["id"]

    async with open_socket(server, room, token=alice.access) as socket:
        assert (await receive(socket))["type"] == "hello"
        await send(socket, {"type": "message.send", "body": "y" * 70_000})
        code, _ = await close_frame(socket, within=5)

    assert code == 1009  # before: the TCP connection was dropped (1006), with no code


async def test_close_frames_say_why(server: Server) -> None:
    alice, bob = await asyncio.to_thread(register_all, server, "alice", "bob")
    room = (await asyncio.to_thread(create_room, server, alice, "members"))["id"]

    async with open_socket(server, room, token=bob.access) as outsider:
        assert await close_frame(outsider, within=5) == (4403, "not a member")
    async with open_socket(server, room, token="not-a-token") as anonymous:
        assert await close_frame(anonymous, within=5) == (4401, "not authenticated")


async def test_paths_without_a_slash_or_without_a_socket(server: Server) -> None:
    (alice,) = await asyncio.to_thread(register_all, server, "alice")
    room = (await asyncio.to_thread(create_room, server, alice, "paths"))["id"]
    headers = {"Authorization": f"Bearer {alice.access}"}
    base = f"ws://{HOST}:{server.port}"

    async with connect(f"{base}/ws/rooms/{room}", additional_headers=headers, proxy=None) as ws:
        hello = await receive(ws)
        assert (hello["type"], hello["room"]["id"]) == ("hello", room)

    for path in ("/ws/rooms/abc/", "/ws/rooms/", "/ws/nothing/", f"/ws/rooms/{'9' * 30}/"):
        async with connect(f"{base}{path}", additional_headers=headers, proxy=None) as ws:
            assert await close_frame(ws, within=5) == (4404, "no such socket"), path

    # Refused cleanly: no traceback (the server fixture fails the test on one), a line
    # at INFO for each.
    await asyncio.sleep(0.2)
    assert server.output().count("no WebSocket route for") == 4
