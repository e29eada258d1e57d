"""Load held (issue 5): a few hundred sockets sending at a steady rate to a real server.

20 users each open a socket in each of 10 rooms (200 sockets, 20 per room) and every
socket sends a message every few seconds for ``SOAK_SECONDS`` (15 by default, so CI
stays within a minute; set it higher for a real soak). Then:

- no socket got an error frame other than ``rate_limited``, and none was closed;
- every send was answered: an ack or a ``rate_limited`` error;
- every acknowledged message reached every socket in its room, each socket seeing its
  room's ``seq`` 1..N in order with no gaps, and the room's stored history (read over
  REST) holds exactly the acknowledged messages;
- the server's resident memory stops growing: the second half of the run ends no more
  than a little above the first half's peak.
"""

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.client import (
    Account,
    Server,
    create_room,
    history,
    join_room,
    open_socket,
    receive,
    register,
    send,
)
from tests.support.servers import StartServer

pytestmark = pytest.mark.soak

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "15"))
USERS = 20
ROOMS = 10
SEND_INTERVAL = 4.0  # seconds between one socket's sends: 50 messages/s in all
SETTLE_SECONDS = 20.0
# Memory: the run's second half may end at most this far above the first half's peak.
RSS_SLACK_BYTES = 24 * 1024 * 1024
RSS_SLACK_RATIO = 0.10


@dataclass
class Peer:
    """One socket of one user in one room, and everything it saw."""

    account: Account
    room_id: int
    socket: ClientConnection
    seqs: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: int = 0
    refused: int = 0
    closed: str | None = None


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def read(peer: Peer) -> None:
    try:
        while True:
            frame = await receive_forever(peer.socket)
            kind = frame["type"]
            if kind == "message.new":
                peer.seqs.append(frame["message"]["seq"])
            elif kind == "message.ack":
                peer.acked[frame["client_id"]] = frame["message"]
            elif kind == "error":
                if frame["code"] == "rate_limited":
                    peer.refused += 1
                else:
                    peer.errors.append(frame)
    except ConnectionClosed as closed:
        peer.closed = repr(closed)


async def receive_forever(socket: ClientConnection) -> dict[str, Any]:
    # helpers.receive fails after a few seconds of silence; a quiet room is fine here.
    while True:
        try:
            return await receive(socket)
        except AssertionError as error:
            if "no frame within" not in str(error):
                raise


async def write(peer: Peer, deadline: float) -> None:
    await asyncio.sleep(random.uniform(0, SEND_INTERVAL))  # spread the sends out
    n = 0
    while time.monotonic() < deadline and peer.closed is None:
        client_id = f"u{peer.account.id}-r{peer.room_id}-{n}"
        frame = {"type": "message.send", "body": f"soak {n}", "client_id": client_id}
        await send(peer.socket, frame)
        peer.sent += 1
        n += 1
        await asyncio.sleep(SEND_INTERVAL)


async def sample_rss(pid: int, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append((time.monotonic(), rss_bytes(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def stored_messages(server: Server, account: Account, room_id: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    url: str | None = f"/api/v1/rooms/{room_id}/messages/?after=0&limit=100"
    while url is not None:
        page = history(server, account, url)
        messages.extend(page["results"])
        url = page["next"]
    return messages


def set_up(server: Server) -> tuple[list[Account], list[int]]:
    # Django runs each request in a thread of its own: sign up and join in parallel.
    with ThreadPoolExecutor(max_workers=8) as pool:
        accounts = list(pool.map(lambda n: register(server, f"soak{n}"), range(USERS)))
        owner = accounts[0]
        room_ids = [int(create_room(server, owner, f"soak-room-{n}")["id"]) for n in range(ROOMS)]
        joins = [(account, room_id) for account in accounts[1:] for room_id in room_ids]
        list(pool.map(lambda join: join_room(server, *join), joins))
    return accounts, room_ids


async def eventually(done: Callable[[], bool], seconds: float = SETTLE_SECONDS) -> None:
    """Returns once ``done()`` holds, or when the time is up (the asserts then tell)."""
    for _ in range(int(seconds / 0.2)):
        if done():
            return
        await asyncio.sleep(0.2)


@pytest.mark.timeout(max(120, int(SOAK_SECONDS) + 120))
async def test_hundreds_of_sockets_at_a_steady_rate_lose_nothing_and_memory_levels_off(
    start_server: StartServer,
) -> None:
    # Tokens outlive a long soak; sends are limited per user and room, far above our rate.
    server = start_server(env={"JWT_ACCESS_MINUTES": str(int(SOAK_SECONDS // 60) + 60)})
    accounts, room_ids = await asyncio.to_thread(set_up, server)

    # All at once, as clients do when a server comes back: a reconnect storm.
    openings = [
        (account, room_id, open_socket(server, room_id, token=account.access))
        for account in accounts
        for room_id in room_ids
    ]
    sockets = await asyncio.gather(*(opening.__aenter__() for _, _, opening in openings))
    try:
        peers = [
            Peer(account, room_id, socket)
            for (account, room_id, _), socket in zip(openings, sockets, strict=True)
        ]
        hellos = await asyncio.gather(*(receive(peer.socket) for peer in peers))
        assert {hello["type"] for hello in hellos} == {"hello"}
        readers = [asyncio.create_task(read(peer)) for peer in peers]
        samples: list[tuple[float, int]] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server.process.pid, samples, stop))
        started = time.monotonic()
        deadline = started + SOAK_SECONDS
        await asyncio.gather(*(write(peer, deadline) for peer in peers))

        # Every send answered, then every acknowledged message delivered everywhere.
        await eventually(
            lambda: all(len(p.acked) + p.refused + len(p.errors) >= p.sent for p in peers)
        )
        acked_per_room = dict.fromkeys(room_ids, 0)
        for peer in peers:
            acked_per_room[peer.room_id] += len(peer.acked)
        await eventually(lambda: all(len(p.seqs) >= acked_per_room[p.room_id] for p in peers))
        stop.set()
        await sampler
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        # All at once too: everyone leaves.
        await asyncio.gather(
            *(opening.__aexit__(None, None, None) for _, _, opening in openings),
            return_exceptions=True,
        )

    # No errors but rate limits, no socket lost, every send answered.
    assert [peer.closed for peer in peers if peer.closed] == []
    assert [error for peer in peers for error in peer.errors] == []
    unanswered = {
        (peer.account.username, peer.room_id): peer.sent - len(peer.acked) - peer.refused
        for peer in peers
        if len(peer.acked) + peer.refused != peer.sent
    }
    assert unanswered == {}
    total_acked = sum(acked_per_room.values())
    assert total_acked >= len(peers) * (SOAK_SECONDS // SEND_INTERVAL) * 0.9

    # Every acknowledged message reached every socket in its room, in seq order.
    for peer in peers:
        expected = list(range(1, acked_per_room[peer.room_id] + 1))
        assert peer.seqs == expected, (peer.account.username, peer.room_id, peer.seqs[-5:])

    # The stored history is exactly the acknowledged messages.
    owner = accounts[0]
    for room_id in room_ids:
        stored = await asyncio.to_thread(stored_messages, server, owner, room_id)
        acked = {
            message["id"]: message
            for peer in peers
            if peer.room_id == room_id
            for message in peer.acked.values()
        }
        assert [m["seq"] for m in stored] == list(range(1, len(acked) + 1))
        assert {m["id"]: m for m in stored} == acked

    # Memory levels off: the second half ends within a little of the first half's peak.
    middle = started + SOAK_SECONDS / 2
    first = [rss for at, rss in samples if at < middle]
    second = [rss for at, rss in samples if at >= middle]
    assert first, samples
    assert second, samples
    limit = max(first) * (1 + RSS_SLACK_RATIO) + RSS_SLACK_BYTES
    mib = 1024 * 1024
    report = (
        f"{len(peers)} sockets, {total_acked} messages in {SOAK_SECONDS:.0f} s; RSS MiB: "
        f"start {first[0] / mib:.1f}, first-half peak {max(first) / mib:.1f}, "
        f"end {second[-1] / mib:.1f}, limit {limit / mib:.1f}"
    )
    print(report)
    assert second[-1] <= limit, report
