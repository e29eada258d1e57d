"""Channel-layer group naming and fan-out: the only module that sends to the layer.

Services call the sync functions through ``transaction.on_commit``, so clients never
hear of a change that was rolled back; the WebSocket writer sends its batches' events
itself once they are committed (``send_events``); the consumer calls the async ones for
what is never stored (typing, presence). Each event that reaches sockets verbatim carries its
frame already encoded as JSON, so a broadcast is serialized once, not once per socket.
"""

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

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
    # A hung Redis answers nothing until its socket timeout (30 s): give up sooner,
    # so that nothing waiting on a send (a REST request, a socket's frame) waits long.
    # A timeout context, not wait_for: no task per send on the busiest path.
    async with asyncio.timeout(settings.CHAT_PUBLISH_TIMEOUT_SECONDS):
        await layer.group_send(group, {**event, "group": group})


async def send_events(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Sends ``(group, event)`` pairs, for changes that are already committed.

    Each group's events leave in order; different groups' go out concurrently (a batch
    of sends in fifty rooms is fifty channel-layer round trips, not one after another).
    A failing layer must not raise: the change is committed either way, and a client
    that misses an event sees a gap in ``seq`` (or reconnects) and catches up through
    ``?after=`` (API.md, Guarantees).
    """
    by_group: dict[str, list[dict[str, Any]]] = {}
    for group, event in sends:
        by_group.setdefault(group, []).append(event)

    async def send_in_order(group: str, group_events: list[dict[str, Any]]) -> None:
        for event in group_events:
            await _send_to_group(group, event)

    results = await asyncio.gather(
        *(send_in_order(group, group_events) for group, group_events in by_group.items()),
        return_exceptions=True,
    )
    for group, result in zip(by_group, results, strict=True):
        if isinstance(result, Exception):
            logger.error(
                "channel layer send failed for %s",
                [event["type"] for event in by_group[group]],
                exc_info=result,
            )


def _send_after_commit(sends: list[tuple[str, dict[str, Any]]]) -> None:
    """``send_events`` from synchronous code (``transaction.on_commit``): one hop to the loop.

    The caller (a REST request) waits for it, so at most ``CHAT_PUBLISH_TIMEOUT_SECONDS``
    per event of a room when the layer hangs.
    """
    async_to_sync(send_events)(sends)


def _to_room(room_id: int, event: dict[str, Any]) -> None:
    _send_after_commit([(room_group_name(room_id), event)])


def message_new_events(messages: list[Message]) -> list[tuple[str, dict[str, Any]]]:
    """``message.new`` for the messages, one event per room with their frames in order.

    A batch reaches each process once per room, not once per message: one channel-layer
    message (one Redis round trip) where there were dozens, and each frame is encoded
    once for every socket. The event's ``frames`` are ``[seq, text]`` pairs.
    """
    frames_by_room: dict[int, list[list[Any]]] = {}
    for message in messages:
        text = encode_frame({"type": "message.new", "message": message_payload(message)})
        frames_by_room.setdefault(message.room_id, []).append([message.seq, text])
    return [
        (room_group_name(room_id), {"type": "message.new", "frames": frames})
        for room_id, frames in frames_by_room.items()
    ]


def broadcast_messages_created(messages: list[Message]) -> None:
    _send_after_commit(message_new_events(messages))


def broadcast_message_updated(message: Message) -> None:
    text = encode_frame({"type": "message.updated", "message": message_payload(message)})
    _to_room(message.room_id, {"type": "message.updated", "text": text})


def broadcast_message_deleted(*, message_id: int, room_id: int) -> None:
    text = encode_frame({"type": "message.deleted", "message_id": message_id, "room": room_id})
    _to_room(room_id, {"type": "message.deleted", "text": text})


def broadcast_room_updated(room_id: int, *, room: dict[str, Any], last_seq: int) -> None:
    """The room's name, topic or visibility changed.

    ``room`` is the Room as anyone sees it, without the per-user fields; each socket
    adds its own user's (role, unread count from ``last_seq``) from what it holds, so
    no socket reads the database for it.
    """
    _to_room(room_id, {"type": "room.updated", "room": room, "last_seq": last_seq})


def broadcast_read_updated(user_id: int, room_id: int, seq: int) -> None:
    """The user's read marker in the room moved to ``seq``: their sockets hear of it."""
    event = {"type": "read.updated", "room": room_id, "seq": seq}
    _send_after_commit([(user_group_name(user_id), event)])


def broadcast_room_deleted(room_id: int) -> None:
    """Sockets in the room send ``room.deleted`` and close with 4404."""
    _to_room(room_id, {"type": "room.deleted", "room": room_id})


def broadcast_member_removed(room_id: int, user_id: int) -> None:
    """That user's sockets in the room close with 4403."""
    _to_room(room_id, {"type": "member.removed", "user_id": user_id})


def _sign_out(user_id: int, reason: str) -> None:
    """Every socket of that user closes with 4401, ``reason`` in its close frame."""
    event = {"type": "user.signed_out", "reason": reason}
    _send_after_commit([(user_group_name(user_id), event)])


def broadcast_user_deactivated(user_id: int) -> None:
    _sign_out(user_id, "user deactivated")


def broadcast_user_sessions_revoked(user_id: int) -> None:
    """Every token of that user was revoked (a password change, log out everywhere)."""
    _sign_out(user_id, "signed out everywhere")


async def send_typing(*, room_id: int, user: User, is_typing: bool) -> None:
    text = encode_frame({"type": "typing", "user": user_brief(user), "is_typing": is_typing})
    await group_send(room_id, {"type": "typing", "user_id": user.pk, "text": text})


async def send_presence(*, room_id: int, user: User, status: str) -> None:
    text = encode_frame({"type": "presence", "user": user_brief(user), "status": status})
    await group_send(room_id, {"type": "presence", "user_id": user.pk, "text": text})
