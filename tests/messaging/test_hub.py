import asyncio

import pytest
from channels.layers import get_channel_layer

from accounts.models import User
from messaging.events import room_group_name
from messaging.hub import get_hub
from rooms.models import Room
from tests.messaging.conftest import Connect, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def group_channels(group: str) -> set[str]:
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # the in-memory layer
        return set(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))
    members = await connection.zrange(layer._group_key(group), 0, -1)
    return {member.decode() for member in members}


async def test_a_process_subscribes_once_per_room_whatever_its_sockets(
    connect: Connect, room: Room, user: User
) -> None:
    sockets = [await connect(room, user) for _ in range(3)]

    hub = get_hub()
    assert await group_channels(room_group_name(room.pk)) == {hub.channel}
    await sockets[0].send_json_to({"type": "message.send", "body": "to all three"})
    for socket in sockets:
        assert (await receive_until(socket, "message.new"))["message"]["body"] == "to all three"


async def test_the_hub_leaves_a_room_its_last_socket_left(
    connect: Connect, room: Room, user: User
) -> None:
    socket = await connect(room, user)
    hub = get_hub()
    await socket.disconnect()

    await hub.maintain()

    assert hub.channel not in await group_channels(room_group_name(room.pk))
    assert room_group_name(room.pk) not in hub.groups


async def test_a_socket_that_fails_to_take_an_event_does_not_stop_the_others() -> None:
    received: list[str] = []

    class Gone:
        async def deliver(self, event: dict[str, object]) -> None:
            raise ConnectionError("Attempt to send on a closed protocol")

        async def refresh_presence(self) -> None: ...

    class Live:
        async def deliver(self, event: dict[str, object]) -> None:
            received.append(str(event["text"]))

        async def refresh_presence(self) -> None: ...

    hub = get_hub()
    await hub.subscribe("room.gone-test", Gone())
    await hub.subscribe("room.gone-test", Live())

    await get_channel_layer().group_send(
        "room.gone-test", {"type": "typing", "group": "room.gone-test", "text": "still here"}
    )
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.01)

    assert received == ["still here"]
