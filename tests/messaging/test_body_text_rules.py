"""A body that is blank once format characters are removed is blank (API.md, Accounts, v2)."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from rooms.models import Room
from tests.messaging.conftest import TIMEOUT, Connect

BLANK_BODIES = ["\u200b", "\u200b\u200b", " \ufeff\n\u200d ", "\u2060\u202e\u00ad"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", BLANK_BODIES)
def test_a_body_of_only_format_characters_is_refused_over_rest(
    auth_client: APIClient, room: Room, body: str
) -> None:
    response = auth_client.post(f"/api/v1/rooms/{room.pk}/messages/", {"body": body}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"body"}
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_body_with_format_characters_and_text_is_kept_verbatim(
    auth_client: APIClient, room: Room
) -> None:
    body = "\U0001f468\u200d\U0001f469 hi\u200b"

    response = auth_client.post(f"/api/v1/rooms/{room.pk}/messages/", {"body": body}, format="json")

    assert response.status_code == 201
    assert response.json()["body"] == body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", BLANK_BODIES[:2])
async def test_a_body_of_only_format_characters_is_refused_over_the_socket(
    connect: Connect, room: Room, user: User, body: str
) -> None:
    socket = await connect(room, user)

    await socket.send_json_to({"type": "message.send", "body": body, "client_id": "c-1"})

    error = await socket.receive_json_from(timeout=TIMEOUT)
    assert (error["type"], error["code"], error["client_id"]) == (
        "error",
        "validation_error",
        "c-1",
    )
    assert "body" in error["errors"]
    assert not await Message.objects.aexists()
