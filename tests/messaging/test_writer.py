from unittest import mock

import pytest
from django.test import override_settings

from accounts.models import User
from messaging import sockets
from messaging.models import Message
from rooms.models import Room
from tests.messaging.conftest import Connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1000)
async def test_sends_arriving_together_share_a_transaction_and_each_gets_its_ack(
    connect: Connect, room: Room, user: User
) -> None:
    senders = [await connect(room, user) for _ in range(10)]
    batches: list[int] = []
    real = sockets.message_create_many

    def counting(drafts, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(len(drafts))
        return real(drafts, **kwargs)

    with mock.patch.object(sockets, "message_create_many", counting):
        for n, socket in enumerate(senders):
            await socket.send_json_to(
                {"type": "message.send", "body": f"m{n}", "client_id": f"c{n}"}
            )
        acks = [await receive_until(socket, "message.ack") for socket in senders]

    assert [ack["client_id"] for ack in acks] == [f"c{n}" for n in range(10)]
    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 11))
    assert sum(batches) == 10
    assert len(batches) < 10  # they were batched
    assert await Message.objects.acount() == 10
