"""Sockets and revoked sessions: a password change or "log out everywhere" closes them.

Through the real ``config.asgi.application``, with tokens from a real login.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from accounts.models import User
from config.asgi import application
from rooms.models import Room
from tests.factories import TEST_PASSWORD
from tests.messaging.conftest import ORIGIN, TIMEOUT, close_code, close_code_after_open

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(user: User, password: str = TEST_PASSWORD) -> dict[str, str]:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def post_as(access: str, url: str, body: dict[str, str]) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return int(client.post(url, body, format="json").status_code)


def socket_with(room: Room, access: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/rooms/{room.pk}/?token={access}", headers=[ORIGIN]
    )


async def open_socket(room: Room, access: str) -> WebsocketCommunicator:
    communicator = socket_with(room, access)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
    return communicator


async def next_close(communicator: WebsocketCommunicator) -> int | None:
    code = await close_code_after_open(communicator)
    await communicator.disconnect()  # the socket is ours, not the connect fixture's
    return code


REVOKING = [
    ("/api/v1/auth/logout/all/", {}),
    (
        "/api/v1/users/me/password/",
        {"old_password": TEST_PASSWORD, "new_password": "pale-violet-tractor-81"},
    ),
]


@pytest.mark.parametrize(("url", "body"), REVOKING)
async def test_ending_every_session_closes_the_users_sockets_with_4401(
    room: Room, user: User, url: str, body: dict[str, str]
) -> None:
    phone = await database_sync_to_async(log_in)(user)
    laptop = await database_sync_to_async(log_in)(user)
    phone_socket = await open_socket(room, phone["access"])
    laptop_socket = await open_socket(room, laptop["access"])

    assert await database_sync_to_async(post_as)(laptop["access"], url, body) == 204

    assert await next_close(phone_socket) == 4401
    assert await next_close(laptop_socket) == 4401


async def test_a_socket_opened_with_a_token_from_before_is_refused_with_4401(
    room: Room, user: User
) -> None:
    old = await database_sync_to_async(log_in)(user)
    await database_sync_to_async(post_as)(old["access"], "/api/v1/auth/logout/all/", {})

    assert await close_code(socket_with(room, old["access"])) == 4401
    fresh = await database_sync_to_async(log_in)(user)
    socket = await open_socket(room, fresh["access"])
    await socket.disconnect()


async def test_an_auth_frame_with_a_token_from_before_is_refused(room: Room, user: User) -> None:
    old = await database_sync_to_async(log_in)(user)
    await database_sync_to_async(post_as)(old["access"], "/api/v1/auth/logout/all/", {})
    fresh = await database_sync_to_async(log_in)(user)
    socket = await open_socket(room, fresh["access"])

    await socket.send_json_to({"type": "auth", "token": old["access"]})

    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"]) == ("error", "validation_error")
    await socket.send_json_to({"type": "auth", "token": fresh["access"]})
    assert (await socket.receive_json_from(timeout=TIMEOUT))["type"] == "auth.ok"
    await socket.disconnect()


async def test_a_socket_closed_by_logging_out_everywhere_says_why(room: Room, user: User) -> None:
    login = await database_sync_to_async(log_in)(user)
    socket = await open_socket(room, login["access"])

    await database_sync_to_async(post_as)(login["access"], "/api/v1/auth/logout/all/", {})

    while (output := await socket.receive_output(timeout=TIMEOUT))["type"] != "websocket.close":
        pass
    assert (output["code"], output["reason"]) == (4401, "signed out everywhere")
    await socket.disconnect()
