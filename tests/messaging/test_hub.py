import asyncio
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from messaging import consumers
from messaging.services import message_create, message_delete, message_update
from messaging.sockets import SocketAccessCheck, socket_access_check, socket_rooms_last_rev
from realtime.groups import room_group
from realtime.hub import get_hub
from rooms.models import Membership, Room
from tests.conftest import Published
from tests.factories import MessageFactory, RoomFactory, UserFactory
from tests.messaging.conftest import TIMEOUT, Connect, close_code_after_open, receive_until

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
    assert await group_channels(room_group(room.pk)) == {hub.channel}
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

    assert hub.channel not in await group_channels(room_group(room.pk))
    assert room_group(room.pk) not in hub.groups


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


# Revocation without its broadcast (the layer was away when it was sent) ------------


async def test_a_member_removed_unannounced_is_closed_with_4403_at_the_next_maintenance(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    owner_socket = await connect(room, user)
    member_socket = await connect(room, member)
    await Membership.objects.filter(room=room, user=member).adelete()  # no member.removed

    await get_hub().maintain()

    assert await close_code_after_open(member_socket) == 4403
    await owner_socket.send_json_to({"type": "ping"})
    assert (await receive_until(owner_socket, "pong"))["type"] == "pong"


@pytest.mark.parametrize(("change", "code"), [("room deleted", 4404), ("user deactivated", 4401)])
async def test_an_unannounced_room_deletion_or_deactivation_closes_at_the_next_maintenance(
    connect: Connect, room: Room, member: User, change: str, code: int
) -> None:
    socket = await connect(room, member)
    if change == "room deleted":
        await Room.objects.filter(pk=room.pk).adelete()
    else:
        await User.objects.filter(pk=member.pk).aupdate(is_active=False)

    await get_hub().maintain()

    assert await close_code_after_open(socket) == code


async def test_a_greeted_socket_is_re_checked_while_its_presence_is_still_going_out(
    connect: Connect, room: Room, member: User
) -> None:
    """From its hello on, a socket counts for the hub's re-checks, even while a slow
    channel layer still holds its "online" broadcast."""
    released = asyncio.Event()

    async def slow_presence(*, status: str, **kwargs: object) -> None:
        if status == "online":
            await released.wait()

    with mock.patch.object(consumers.events, "send_presence", slow_presence):
        socket = await connect(room, member)
        await User.objects.filter(pk=member.pk).aupdate(is_active=False)
        await get_hub().maintain()
        released.set()

    assert await close_code_after_open(socket) == 4401


async def test_the_hub_re_checks_all_its_sockets_in_one_query(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    other_room = await database_sync_to_async(RoomFactory.create)(owner=member)
    for target, who in ((room, user), (room, member), (other_room, member), (room, user)):
        await connect(target, who)
    checks: list[set[tuple[int, int]]] = []

    def counting(*, sockets: list[tuple[int, int]]) -> SocketAccessCheck:
        checks.append(set(sockets))
        return socket_access_check(sockets=sockets)

    with mock.patch.object(consumers, "socket_access_check", counting):
        await get_hub().maintain()

    assert checks == [{(room.pk, user.pk), (room.pk, member.pk), (other_room.pk, member.pk)}]


def test_the_access_check_is_one_query_whatever_the_sockets(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    rooms = [RoomFactory.create() for _ in range(3)]
    users = [UserFactory.create() for _ in range(3)]
    for room in rooms[:2]:
        for user in users:
            Membership.objects.create(room=room, user=user)
    Membership.objects.filter(room=rooms[0], user=users[0]).delete()
    User.objects.filter(pk=users[2].pk).update(is_active=False)
    rooms[2].delete()

    sockets = [(room.pk, user.pk) for room in rooms for user in users]
    with django_assert_num_queries(1):
        check = socket_access_check(sockets=sockets)

    assert check.rooms == {rooms[0].pk, rooms[1].pk}
    assert check.members == {
        (rooms[0].pk, users[1].pk),
        (rooms[1].pk, users[0].pk),
        (rooms[1].pk, users[1].pk),
    }
    assert check.inactive == {users[2].pk}


# Catching up after the layer lost the groups -------------------------------------


async def test_after_a_re_join_sockets_catch_up_on_a_quiet_room_without_a_new_message(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    sockets = [await connect(room, user), await connect(room, member)]
    # Stored while the groups were forgotten: their broadcasts reached nobody, and
    # nothing said since shows the gap.
    for n in range(3):
        await database_sync_to_async(MessageFactory.create)(room=room, body=f"missed {n}")

    await get_hub().maintain()

    for socket in sockets:
        frames = [await receive_until(socket, "message.new") for _ in range(3)]
        assert [f["message"]["body"] for f in frames] == ["missed 0", "missed 1", "missed 2"]
        assert [f["message"]["seq"] for f in frames] == [1, 2, 3]
        await socket.send_json_to({"type": "ping"})
        assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}


async def test_the_hub_reads_the_newest_rev_of_all_its_rooms_in_one_query(
    connect: Connect, room: Room, user: User, member: User
) -> None:
    other_room = await database_sync_to_async(RoomFactory.create)(owner=member)
    for target, who in ((room, user), (room, member), (other_room, member)):
        await connect(target, who)
    reads: list[set[int]] = []

    def counting(*, room_ids: set[int]) -> dict[int, int]:
        reads.append(set(room_ids))
        return socket_rooms_last_rev(room_ids=room_ids)

    with mock.patch.object(consumers, "socket_rooms_last_rev", counting):
        await get_hub().maintain()

    assert reads == [{room.pk, other_room.pk}]


async def test_edits_and_deletions_whose_events_were_lost_are_filled_in_rev_order(
    connect: Connect, room: Room, user: User, member: User, capture_events: Published
) -> None:
    """API.md, Guarantees (v2): a socket gets the room's changes in rev order, edits and
    deletions included, even when their events never reached it."""
    kept = await database_sync_to_async(message_create)(room=room, author=user, body="kept")
    gone = await database_sync_to_async(message_create)(room=room, author=user, body="gone")
    socket = await connect(room, member)
    assert socket.hello["last_rev"] == 2
    # Edited, deleted and sent while the layer was away: the events are captured, not sent.
    await database_sync_to_async(message_update)(message=kept.message, body="kept, edited")
    await database_sync_to_async(message_delete)(message=gone.message)
    await database_sync_to_async(message_create)(room=room, author=user, body="new")
    changes = [e for _, e in capture_events if e["type"] != "presence"]
    assert [e["type"] for e in changes][-3:] == ["message.changes"] * 3

    await get_hub().maintain()

    frames = [await socket.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
    assert [(f["type"], f.get("message", f)["rev"]) for f in frames] == [
        ("message.updated", 3),
        ("message.deleted", 4),
        ("message.new", 5),
    ]
    assert frames[0]["message"]["body"] == "kept, edited"
    assert frames[1] == {
        "type": "message.deleted",
        "message_id": gone.message.pk,
        "room": room.pk,
        "seq": 2,
        "rev": 4,
    }
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
