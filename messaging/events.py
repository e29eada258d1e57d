"""Channel-layer group naming and fan-out: the only module that sends to the layer.

Services call the sync functions through ``transaction.on_commit``, so clients never
hear of a change that was rolled back; the consumer calls the async ones for what is
never stored (typing, presence). Each event that reaches sockets verbatim carries its
frame already encoded as JSON, so a broadcast is serialized once, not once per socket.
"""

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.models import User
from accounts.serializers import user_brief
from messaging.models import Message
from messaging.serializers import message_payload

logger = logging.getLogger(__name__)


def room_group_name(room_id: int) -> str:
    return f"room.{room_id}"


def user_group_name(user_id: int) -> str:
    """Every socket of one user, whatever its room."""
    return f"user.{user_id}"


def encode_frame(frame: dict[str, Any]) -> str:
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate, echoed from a client's own frame (its client_id), cannot
        # travel in a text frame: daphne would fail the socket with 1011. As an escape
        # it is still the same JSON string.
        return json.dumps(frame, ensure_ascii=True, separators=(",", ":"))
    return text


async def group_send(room_id: int, event: dict[str, Any]) -> None:
    await _send_to_group(room_group_name(room_id), event)


async def _send_to_group(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    # The group travels with the event: each process's hub reads one channel for all
    # of its groups and hands the event to the sockets of this one (messaging.hub).
    await layer.group_send(group, {**event, "group": group})


async def send_events(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Sends ``(group, event)`` pairs in order, for changes that are already committed.

    A failing layer must not raise: the change is committed either way, and a client
    that misses an event sees a gap in ``seq`` (or reconnects) and catches up through
    ``?after=`` (API.md, Guarantees).
    """
    try:
        for group, event in sends:
            await _send_to_group(group, event)
    except Exception:
        logger.exception("channel layer send failed for %s", [e["type"] for _, e in sends])


def _send_after_commit(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """``send_events`` from synchronous code (``transaction.on_commit``): one hop to the loop."""
    async_to_sync(send_events)(sends)


def _to_room(room_id: int, event: dict[str, Any]) -> None:
    _send_after_commit([(room_group_name(room_id), event)])


def message_new_events(messages: list[Message]) -> list[tuple[str, dict[str, Any]]]:
    """``message.new`` for each message, in order, each frame encoded once for every socket."""
    return [
        (
            room_group_name(message.room_id),
            {
                "type": "message.new",
                "seq": message.seq,
                "text": encode_frame({"type": "message.new", "message": message_payload(message)}),
            },
        )
        for message in messages
    ]


def broadcast_messages_created(messages: list[Message]) -> None:
    _send_after_commit(message_new_events(messages))


def broadcast_message_updated(message: Message) -> None:
    text = encode_frame({"type": "message.updated", "message": message_payload(message)})
    _to_room(message.room_id, {"type": "message.updated", "text": text})


def broadcast_message_deleted(*, message_id: int, room_id: int) -> None:
    text = encode_frame({"type": "message.deleted", "message_id": message_id, "room": room_id})
    _to_room(room_id, {"type": "message.deleted", "text": text})


def broadcast_room_updated(room_id: int) -> None:
    """The room's name, topic or visibility changed; each socket sends its own view of it."""
    _to_room(room_id, {"type": "room.updated"})


def broadcast_room_deleted(room_id: int) -> None:
    """Sockets in the room send ``room.deleted`` and close with 4404."""
    _to_room(room_id, {"type": "room.deleted", "room": room_id})


def broadcast_member_removed(room_id: int, user_id: int) -> None:
    """That user's sockets in the room close with 4403."""
    _to_room(room_id, {"type": "member.removed", "user_id": user_id})


def broadcast_user_deactivated(user_id: int) -> None:
    """That user's sockets close with 4401."""
    _send_after_commit([(user_group_name(user_id), {"type": "user.deactivated"})])


async def send_typing(*, room_id: int, user: User, is_typing: bool) -> None:
    text = encode_frame({"type": "typing", "user": user_brief(user), "is_typing": is_typing})
    await group_send(room_id, {"type": "typing", "user_id": user.pk, "text": text})


async def send_presence(*, room_id: int, user: User, status: str) -> None:
    text = encode_frame({"type": "presence", "user": user_brief(user), "status": status})
    await group_send(room_id, {"type": "presence", "user_id": user.pk, "text": text})
