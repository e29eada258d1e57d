"""Client-side helpers for the scale-out and fault tests, on top of ``tests.support.client``."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.support.client import (
    Account,
    Server,
    close_code,
    history,
    open_socket,
    receive,
    send,
)


def brief(account: Account) -> dict[str, Any]:
    """The brief User object the server embeds for an account registered by ``register``."""
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.username.title(),
    }


def online_ids(hello: dict[str, Any]) -> set[int]:
    return {user["id"] for user in hello["online"]}


async def read_until(
    socket: ClientConnection,
    frames: list[dict[str, Any]],
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    within: float,
) -> bool:
    """Appends frames to ``frames`` until ``done(frames)``; False if ``within`` s pass first.

    What was read stays in ``frames`` either way, so a caller can try again.
    """
    deadline = time.monotonic() + within
    while not done(frames):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            async with asyncio.timeout(remaining):
                frames.append(await receive(socket))
        except TimeoutError:
            return done(frames)
    return True


async def frames_until(
    socket: ClientConnection,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    within: float,
) -> list[dict[str, Any]]:
    """Reads frames until ``done(frames so far)``; fails with what it got after ``within`` s."""
    frames: list[dict[str, Any]] = []
    if not await read_until(socket, frames, done, within=within):
        raise AssertionError(f"gave up after {within} s; frames: {frames}")
    return frames


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == kind]


def new_seqs(frames: list[dict[str, Any]]) -> list[int]:
    """The ``seq`` of each ``message.new`` among ``frames``, in arrival order."""
    return [frame["message"]["seq"] for frame in of_type(frames, "message.new")]


async def answer_to(socket: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Sends a frame and returns the server's answer to it: the ack or the error frame.

    Broadcasts that arrive meanwhile (a ``message.new``, a ``presence``) are skipped.
    """
    await send(socket, frame)
    frames = await frames_until(
        socket,
        lambda got: got[-1]["type"] in ("message.ack", "error") if got else False,
        within=10,
    )
    return frames[-1]


async def ping(socket: ClientConnection) -> None:
    """The socket is open and its consumer answers: a pong comes back (after any backlog)."""
    await send(socket, {"type": "ping"})
    frames = await frames_until(
        socket, lambda got: bool(got) and got[-1]["type"] == "pong", within=5
    )
    assert frames[-1] == {"type": "pong"}


def all_messages(
    server: Server, account: Account, room_id: int, *, after: int = 0
) -> list[dict[str, Any]]:
    """The room's history after ``after`` (all of it by default), oldest first, via ``next``."""
    messages: list[dict[str, Any]] = []
    url: str | None = f"/api/v1/rooms/{room_id}/messages/?after={after}&limit=100"
    while url is not None:
        page = history(server, account, url)
        messages.extend(page["results"])
        url = page["next"]
    return messages


async def opening_close_code(server: Server, room_id: int, account: Account) -> int:
    """Opens a socket that the server cannot serve; the code it is closed with.

    The handshake must be accepted (a 44xx/45xx code reaches the client), not refused
    with an HTTP status.
    """
    try:
        async with open_socket(server, room_id, token=account.access) as ws:
            return await close_code(ws)
    except InvalidStatus as refused:
        raise AssertionError(
            f"the handshake was refused with HTTP {refused.response.status_code}, "
            "not accepted and closed with a code"
        ) from None
