import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from accounts.models import User
from messaging import writer
from messaging.models import Message
from realtime.publish import Publisher
from rooms.models import Room
from tests.messaging.conftest import Connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1000)
async def test_sends_arriving_together_share_a_transaction_and_each_gets_its_ack(
    connect: Connect, room: Room, user: User
) -> None:
    senders = [await connect(room, user) for _ in range(10)]
    batches: list[int] = []
    real = writer.message_create_many

    def counting(drafts, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(len(drafts))
        return real(drafts, **kwargs)

    with mock.patch.object(writer, "message_create_many", counting):
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


@contextlib.contextmanager
def hung_layer() -> Iterator[asyncio.Event]:
    """Every ``group_send`` waits until the event yielded is set, as on a stopped Redis."""
    layer = get_channel_layer()
    release = asyncio.Event()
    real = layer.group_send

    async def hanging(group: str, message: dict[str, Any]) -> None:
        await release.wait()
        await real(group, message)

    with mock.patch.object(layer, "group_send", hanging):
        try:
            yield release
        finally:
            release.set()


@override_settings(CHAT_PUBLISH_TIMEOUT_SECONDS=60.0)
async def test_acks_do_not_wait_for_the_broadcasts_of_earlier_batches(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)

    with hung_layer() as release:
        for n in range(3):
            await socket.send_json_to(
                {"type": "message.send", "body": f"m{n}", "client_id": f"c{n}"}
            )
            assert (await receive_until(socket, "message.ack"))["client_id"] == f"c{n}"
        release.set()
        # Published once the layer answers, in seq order.
        seqs = [(await receive_until(socket, "message.new"))["message"]["seq"] for _ in range(3)]

    assert seqs == [1, 2, 3]


async def test_a_full_publish_queue_drops_its_oldest_broadcasts_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def recording(group: str, message: dict[str, Any]) -> None:
        started.set()
        await release.wait()
        sent.append(message["text"])

    publisher = Publisher(coalesce="message.changes", limit=2)
    with mock.patch.object(get_channel_layer(), "group_send", recording):
        publisher.publish([("room.1", {"type": "typing", "text": "in flight"})])
        await started.wait()
        publisher.publish([("room.1", {"type": "typing", "text": t}) for t in ("a", "b", "c")])
        release.set()
        assert publisher.task is not None
        await publisher.task  # one task drains the queue until it is empty

    assert sent == ["in flight", "b", "c"]
    assert "dropped the 1 oldest" in caplog.text


async def test_a_backlog_of_one_rooms_broadcasts_goes_out_as_one_event_in_order() -> None:
    sent: list[dict[str, Any]] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def recording(group: str, message: dict[str, Any]) -> None:
        started.set()
        await release.wait()
        sent.append(message)

    def new(*seqs: int) -> tuple[str, dict[str, Any]]:
        frames = [[seq, seq, f"m{seq}"] for seq in seqs]
        return ("room.1", {"type": "message.changes", "frames": frames})

    publisher = Publisher(coalesce="message.changes")
    with mock.patch.object(get_channel_layer(), "group_send", recording):
        publisher.publish([new(1)])
        await started.wait()
        publisher.publish([new(2, 3)])
        publisher.publish([new(4)])
        publisher.publish([("room.1", {"type": "room.updated", "room": {}})])
        publisher.publish([new(5)])
        release.set()
        assert publisher.task is not None
        await publisher.task

    assert [m.get("frames", m["type"]) for m in sent] == [
        [[1, 1, "m1"]],
        [[2, 2, "m2"], [3, 3, "m3"], [4, 4, "m4"]],
        "room.updated",
        [[5, 5, "m5"]],
    ]
