from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from config.asgi import application
from rooms.models import Membership, Room
from tests.factories import UserFactory

ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 3


def ws_path(room_id: int, token: str | None = None) -> str:
    path = f"/ws/rooms/{room_id}/"
    return f"{path}?token={token}" if token else path


def communicator_for(
    room_id: int, user: User | None = None, *, headers: list[tuple[bytes, bytes]] | None = None
) -> WebsocketCommunicator:
    token = str(AccessToken.for_user(user)) if user else None
    return WebsocketCommunicator(
        application, ws_path(room_id, token), headers=headers if headers is not None else [ORIGIN]
    )


async def close_code(communicator: WebsocketCommunicator) -> int | None:
    """Connects, and returns the close code the server answered with after accepting."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected, "the server must accept before closing with a 44xx code"
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            # Let the application finish, as a client's TCP close would.
            await communicator.disconnect()
            return output.get("code")


async def close_code_after_open(socket: WebsocketCommunicator) -> int | None:
    """Reads an open socket until the server closes it; the close code."""
    while True:
        output = await socket.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return output.get("code")


async def receive_until(communicator: WebsocketCommunicator, frame_type: str) -> dict[str, Any]:
    """The next frame of ``frame_type``, skipping others (presence and the like)."""
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == frame_type:
            return frame


Connect = Callable[[Room, User], Awaitable[WebsocketCommunicator]]


@pytest.fixture
def member(room: Room) -> User:
    """A member of ``room`` other than its owner."""
    member = UserFactory.create()
    Membership.objects.create(room=room, user=member)
    return member


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Opens member sockets that have already read their ``hello``; closes them after."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(room: Room, user: User) -> WebsocketCommunicator:
        communicator = communicator_for(room.pk, user)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        hello = await communicator.receive_json_from(timeout=TIMEOUT)
        assert hello["type"] == "hello", hello
        communicator.hello = hello  # type: ignore[attr-defined]
        opened.append(communicator)
        return communicator

    yield open_socket
    for communicator in opened:
        await communicator.disconnect()
