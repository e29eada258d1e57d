"""JWTAuthMiddleware around a tiny ASGI app that reports whom the scope names.

The real chat consumer is not involved: these tests pin down the middleware alone.
"""

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from messaging.middleware import JWTAuthMiddleware, scope_user
from tests.factories import UserFactory

# The middleware looks users up from a worker thread, so the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


async def who_am_i_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts, sends whom the scope names, then waits for the close.

    A bare ASGI app rather than a consumer, so nothing but the middleware touches the
    database or the channel layer.
    """
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    user = scope_user(scope)
    answer = {
        "user": user.pk if user else None,
        "anonymous": scope["user"].is_anonymous,
        "token_exp": scope["token_exp"],
    }
    await send({"type": "websocket.send", "text": json.dumps(answer)})
    while (await receive())["type"] != "websocket.disconnect":
        pass


application = JWTAuthMiddleware(who_am_i_app)


async def who_am_i(path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    answer = await communicator.receive_json_from()
    await communicator.disconnect()
    return answer


def bearer_header(token: object) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def new_user(**kwargs: Any) -> User:
    return await database_sync_to_async(UserFactory.create)(**kwargs)


async def test_a_bearer_header_authenticates_the_user() -> None:
    user = await new_user()
    token = AccessToken.for_user(user)

    answer = await who_am_i(headers=bearer_header(token))

    assert answer == {"user": user.pk, "anonymous": False, "token_exp": token["exp"]}


async def test_a_token_query_parameter_authenticates_the_user() -> None:
    user = await new_user()

    answer = await who_am_i(f"/?token={AccessToken.for_user(user)}")

    assert answer["user"] == user.pk


async def test_the_header_wins_over_the_query_string() -> None:
    header_user = await new_user()
    query_user = await new_user()

    answer = await who_am_i(
        f"/?token={AccessToken.for_user(query_user)}",
        headers=bearer_header(AccessToken.for_user(header_user)),
    )

    assert answer["user"] == header_user.pk


async def test_no_token_leaves_the_user_anonymous() -> None:
    answer = await who_am_i()

    assert answer == {"user": None, "anonymous": True, "token_exp": None}


@pytest.mark.parametrize(
    "path", ["/?token=garbage", "/?token=a.b.c", "/?token=", "/?other=1"], ids=repr
)
async def test_a_bad_token_leaves_the_user_anonymous(path: str) -> None:
    answer = await who_am_i(path)

    assert answer["anonymous"] is True


async def test_a_bad_bearer_header_leaves_the_user_anonymous() -> None:
    answer = await who_am_i(headers=bearer_header("garbage"))

    assert answer["anonymous"] is True


async def test_a_refresh_token_leaves_the_user_anonymous() -> None:
    user = await new_user()
    refresh = await database_sync_to_async(RefreshToken.for_user)(user)

    by_header = await who_am_i(headers=bearer_header(refresh))
    by_query = await who_am_i(f"/?token={refresh}")

    assert by_header["anonymous"] is True
    assert by_query["anonymous"] is True


async def test_an_inactive_users_token_leaves_the_user_anonymous() -> None:
    user = await new_user(is_active=False)

    answer = await who_am_i(headers=bearer_header(AccessToken.for_user(user)))

    assert answer["anonymous"] is True
