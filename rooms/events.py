"""The events of rooms and memberships, published to sockets through ``realtime``
after the change commits (``rooms.services`` calls these inside its transactions)."""

from typing import Any, Literal, TypedDict

from realtime.groups import room_group, user_group
from realtime.publish import publish_many_on_commit, publish_on_commit, publish_sync


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
    """On the user's group: their read marker in ``room`` is now ``seq``, which leaves
    these counts (user sockets send it on as it is)."""

    type: Literal["read.updated"]
    room: int
    seq: int
    unread_count: int
    mention_count: int


class RoomJoinedEvent(TypedDict):
    """On the user's group: they are a member of ``room`` (the Room as they see it)."""

    type: Literal["room.joined"]
    room: dict[str, Any]


LeftReason = Literal["left", "removed", "banned", "deleted"]


class RoomLeftEvent(TypedDict):
    """On the user's group: they are no longer a member of ``room``."""

    type: Literal["room.left"]
    room: int
    reason: LeftReason


def send_room_updated(room_id: int, *, room: dict[str, Any], last_seq: int) -> None:
    """Now (the caller runs after commit): the room's name, topic or visibility changed."""
    event: RoomUpdatedEvent = {"type": "room.updated", "room": room, "last_seq": last_seq}
    publish_sync([(room_group(room_id), event)])


def publish_room_deleted(room_id: int) -> None:
    """Sockets in the room send ``room.deleted`` and close with 4404."""
    event: RoomDeletedEvent = {"type": "room.deleted", "room": room_id}
    publish_on_commit(room_group(room_id), event)


def publish_member_removed(room_id: int, user_id: int, *, reason: LeftReason) -> None:
    """That user's sockets in the room close with 4403; their user sockets get
    ``room.left`` (on their own group, which a user socket hears from before it reads
    its rooms, so no removal falls between the two)."""
    removed: MemberRemovedEvent = {"type": "member.removed", "user_id": user_id}
    left: RoomLeftEvent = {"type": "room.left", "room": room_id, "reason": reason}
    publish_many_on_commit([(room_group(room_id), removed), (user_group(user_id), left)])


def send_room_joined(user_id: int, *, room: dict[str, Any]) -> None:
    """Now (the caller runs after commit): the user's user sockets take up the room."""
    event: RoomJoinedEvent = {"type": "room.joined", "room": room}
    publish_sync([(user_group(user_id), event)])


def publish_read_updated(
    user_id: int, room_id: int, *, seq: int, unread_count: int, mention_count: int
) -> None:
    """The user's read marker in the room moved to ``seq``: their sockets hear of it."""
    event: ReadUpdatedEvent = {
        "type": "read.updated",
        "room": room_id,
        "seq": seq,
        "unread_count": unread_count,
        "mention_count": mention_count,
    }
    publish_on_commit(user_group(user_id), event)
