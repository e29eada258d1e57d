"""The events of rooms and memberships, published to sockets through ``realtime``
after the change commits (``rooms.services`` calls these inside its transactions)."""

from typing import Any, Literal, TypedDict

from realtime.groups import room_group, user_group
from realtime.publish import publish_on_commit, publish_sync


class RoomUpdatedEvent(TypedDict):
    """The room as anyone sees it (no per-user fields): each socket adds its own user's
    (role, unread count from ``last_seq``) from what it holds, so no socket reads the
    database for it."""

    type: Literal["room.updated"]
    room: dict[str, Any]
    last_seq: int


class RoomDeletedEvent(TypedDict):
    type: Literal["room.deleted"]
    room: int


class MemberRemovedEvent(TypedDict):
    type: Literal["member.removed"]
    user_id: int


class ReadUpdatedEvent(TypedDict):
    """On the user's group: their read marker in ``room`` is now ``seq``."""

    type: Literal["read.updated"]
    room: int
    seq: int


def send_room_updated(room_id: int, *, room: dict[str, Any], last_seq: int) -> None:
    """Now (the caller runs after commit): the room's name, topic or visibility changed."""
    event: RoomUpdatedEvent = {"type": "room.updated", "room": room, "last_seq": last_seq}
    publish_sync([(room_group(room_id), event)])


def publish_room_deleted(room_id: int) -> None:
    """Sockets in the room send ``room.deleted`` and close with 4404."""
    event: RoomDeletedEvent = {"type": "room.deleted", "room": room_id}
    publish_on_commit(room_group(room_id), event)


def publish_member_removed(room_id: int, user_id: int) -> None:
    """That user's sockets in the room close with 4403."""
    event: MemberRemovedEvent = {"type": "member.removed", "user_id": user_id}
    publish_on_commit(room_group(room_id), event)


def publish_read_updated(user_id: int, room_id: int, seq: int) -> None:
    """The user's read marker in the room moved to ``seq``: their sockets hear of it."""
    event: ReadUpdatedEvent = {"type": "read.updated", "room": room_id, "seq": seq}
    publish_on_commit(user_group(user_id), event)
