import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from rooms.models import Room
from tests.conftest import bearer
from tests.messaging.test_writer import hung_layer

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(CHAT_PUBLISH_TIMEOUT_SECONDS=0.3)
async def test_a_rest_send_waits_no_longer_than_the_publish_timeout_for_a_hung_layer(
    room: Room, user: User
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))

    with hung_layer():
        started = time.monotonic()
        response = await asyncio.wait_for(
            database_sync_to_async(client.post)(
                f"/api/v1/rooms/{room.pk}/messages/", {"body": "hello"}, format="json"
            ),
            timeout=5,
        )
        took = time.monotonic() - started

    assert response.status_code == 201
    assert took < 3
    assert await Message.objects.filter(room=room).acount() == 1
