"""The one place where rooms read messages: a Room shows its newest one (``last_message``).

Messages sit above rooms in the apps' layers (config → messaging → rooms → accounts →
realtime, common), yet a Room's payload carries its last message. This module is the
one exception that the import contract names (``pyproject.toml``): nothing else in
``rooms`` imports ``messaging``.
"""

from typing import Any

from django.db.models import F, Prefetch

from messaging.models import Message
from messaging.serializers import MessageSerializer, message_payload
from rooms.models import Room

# The attribute that the last-message prefetch fills: a list of zero or one Message.
LAST_MESSAGES_ATTR = "last_messages"


def last_message_prefetch() -> Prefetch:
    """For a list of rooms: runs once for all the rooms loaded, the messages whose seq
    is their room's last_seq, found through the (room, seq) unique index."""
    return Prefetch(
        "messages",
        queryset=Message.objects.filter(seq=F("room__last_seq")).select_related("author"),
        to_attr=LAST_MESSAGES_ATTR,
    )


def attach_last_message(room: Room) -> None:
    """For one room: what the prefetch would have filled, in one query by key."""
    last = Message.objects.select_related("author").filter(room_id=room.pk, seq=room.last_seq)
    setattr(room, LAST_MESSAGES_ATTR, list(last) if room.last_seq else [])


def room_last_message(*, room: Room) -> Message | None:
    """The newest message of ``room``, from the prefetch when the room came with one."""
    prefetched: list[Message] | None = getattr(room, LAST_MESSAGES_ATTR, None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    if room.last_seq == 0:
        return None
    return Message.objects.select_related("author").filter(room=room, seq=room.last_seq).first()


def last_message_payload(room: Room) -> dict[str, Any] | None:
    message = room_last_message(room=room)
    return None if message is None else message_payload(message)


def last_message_schema() -> MessageSerializer:
    """The schema of ``last_message`` (a Message, or null)."""
    return MessageSerializer(allow_null=True)
