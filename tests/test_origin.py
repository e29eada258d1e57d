"""BrowserOriginValidator: a foreign browser is refused; apps and scripts send no Origin."""

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.origin import BrowserOriginValidator


async def accepting_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts every handshake that reaches it, then waits for the close.

    A bare ASGI app rather than a consumer: consumers tidy database connections, and
    these tests have no database.
    """
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def communicator(origin: bytes | None) -> WebsocketCommunicator:
    headers = [(b"origin", origin)] if origin is not None else []
    return WebsocketCommunicator(BrowserOriginValidator(accepting_app), "/", headers=headers)


@pytest.mark.parametrize(
    "origin",
    [b"http://evil.example", b"https://localhost.evil.example", b"null", b"http://"],
    ids=repr,
)
async def test_a_foreign_origin_is_refused(origin: bytes) -> None:
    socket = communicator(origin)

    connected, _ = await socket.connect()

    assert connected is False
    # Channels' denier is a consumer: with Redis it waits on the layer until told the
    # client is gone, as a real client's TCP close would.
    await socket.disconnect()


@pytest.mark.parametrize(
    "origin", [b"http://localhost:8000", b"http://localhost", b"https://127.0.0.1:8443"], ids=repr
)
async def test_an_allowed_origin_passes(origin: bytes) -> None:
    socket = communicator(origin)

    connected, _ = await socket.connect()

    assert connected is True
    await socket.disconnect()


async def test_no_origin_header_passes() -> None:
    socket = communicator(None)

    connected, _ = await socket.connect()

    assert connected is True
    await socket.disconnect()
