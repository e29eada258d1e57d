"""The events of a room's messages, as sockets receive them through ``realtime``.

Every change to a room's messages (new, edited, deleted; reactions later) is one
``message.changes`` event on the room's group: ``frames`` of ``[rev, seq, text]``, the
frame already encoded once for every socket, ``seq`` the new message's position for a
``message.new`` frame and 0 for the others. Sockets deliver them in ``rev`` order
(``realtime.ordering``). Services publish after commit; the WebSocket writer hands its
committed batches to its ``Publisher``; typing and presence, never stored, go at once.
"""

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from accounts.models import User
from accounts.serializers import user_brief
from messaging.models import Message
from messaging.serializers import message_payload
from realtime import publish
from realtime.frames import encode_frame
from realtime.groups import room_group

MESSAGE_CHANGES = "message.changes"

# [rev, seq, text]: seq is the new message's for message.new, else 0.
ChangeFrame = list[Any]


class MessageChangesEvent(TypedDict):
    type: Literal["message.changes"]
    room: int
    frames: list[ChangeFrame]


class HelloFrame(TypedDict):
    """What a room socket sends first (API.md: WebSocket)."""

    type: Literal["hello"]
    room: dict[str, Any]
    user: dict[str, Any]
    online: list[dict[str, Any]]
    last_seq: int
    last_rev: int


class AckFrame(TypedDict):
    """The sender's answer to a stored ``message.send``."""

    type: Literal["message.ack"]
    client_id: str | None
    message: dict[str, Any]


class UserFrameEvent(TypedDict):
    """Typing and presence in a room: the frame, and whose it is (not sent back to
    them). User sockets pass them on only for the rooms they watch."""

    type: Literal["typing", "presence"]
    room: int
    user_id: int
    text: str


# Every frame of a room's events names its room at the top: a user socket carries many
# rooms, and each frame is encoded once for both kinds of socket.


def message_new_text(message: Message) -> str:
    return encode_frame(
        {"type": "message.new", "room": message.room_id, "message": message_payload(message)}
    )


def message_updated_text(message: Message) -> str:
    return encode_frame(
        {"type": "message.updated", "room": message.room_id, "message": message_payload(message)}
    )


def message_deleted_text(message: Message) -> str:
    return encode_frame(
        {
            "type": "message.deleted",
            "message_id": message.pk,
            "room": message.room_id,
            "seq": message.seq,
            "rev": message.rev,
        }
    )


def messages_created_sends(messages: list[Message]) -> list[tuple[str, MessageChangesEvent]]:
    """``message.new`` for the messages, one event per room with their frames in order.

    A batch reaches each process once per room, not once per message: one channel-layer
    message (one Redis round trip) where there were dozens.
    """
    frames_by_room: dict[int, list[ChangeFrame]] = {}
    for message in messages:
        frame: ChangeFrame = [message.rev, message.seq, message_new_text(message)]
        frames_by_room.setdefault(message.room_id, []).append(frame)
    return [
        (room_group(room_id), {"type": "message.changes", "room": room_id, "frames": frames})
        for room_id, frames in frames_by_room.items()
    ]


def _changed(message: Message, text: str) -> None:
    event: MessageChangesEvent = {
        "type": "message.changes",
        "room": message.room_id,
        "frames": [[message.rev, 0, text]],
    }
    publish.publish_on_commit(room_group(message.room_id), event)


def publish_messages_created(messages: list[Message]) -> None:
    """After commit: ``message.new`` for each of ``messages``."""
    publish.publish_many_on_commit(messages_created_sends(messages))


def publish_message_updated(message: Message) -> None:
    """After commit: ``message.updated`` with the message as it is now."""
    _changed(message, message_updated_text(message))


def publish_message_deleted(message: Message) -> None:
    """After commit: ``message.deleted`` (the message's id, room, seq and new rev)."""
    _changed(message, message_deleted_text(message))


async def send_typing(*, room_id: int, user: User, is_typing: bool) -> None:
    text = encode_frame(
        {"type": "typing", "room": room_id, "user": user_brief(user), "is_typing": is_typing}
    )
    event: UserFrameEvent = {"type": "typing", "room": room_id, "user_id": user.pk, "text": text}
    await publish.publish(room_group(room_id), event)


async def send_presence(*, room_ids: Iterable[int], user: User, status: str) -> None:
    """The user came online (their first socket of any kind opened) or went offline
    (their last one closed): every room of theirs hears it. Never raises."""
    brief = user_brief(user)
    sends: list[tuple[str, UserFrameEvent]] = []
    for room_id in room_ids:
        text = encode_frame({"type": "presence", "room": room_id, "user": brief, "status": status})
        event: UserFrameEvent = {
            "type": "presence",
            "room": room_id,
            "user_id": user.pk,
            "text": text,
        }
        sends.append((room_group(room_id), event))
    await publish.publish_many(sends)
