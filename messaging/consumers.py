"""The room WebSocket, ``/ws/rooms/{id}/``: an adapter over ``realtime.consumer``.

What it opens with (the room, the access check, ``hello``), the frames it takes, and
how it shows each event; the rules live in services and selectors (through
``messaging.sockets``, one thread hop each), the transport in the realtime base.
"""

import functools
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError

from accounts.models import User
from messaging import events
from messaging.events import MESSAGE_CHANGES, ChangeFrame
from messaging.middleware import get_user_for_token, scope_user
from messaging.serializers import (
    AuthFrameSerializer,
    ReadFrameSerializer,
    TypingFrameSerializer,
    message_input,
)
from messaging.services import MessageDraft, NotAMember
from messaging.sockets import (
    RoomAccess,
    SocketAccessCheck,
    socket_access_check,
    socket_changes_after,
    socket_mark_read,
    socket_open,
    socket_rooms_last_rev,
)
from messaging.writer import get_writer
from realtime import frames
from realtime.consumer import RealtimeConsumer
from realtime.frames import FrameError, invalid, validated
from realtime.groups import room_group, user_group
from realtime.limits import get_process_limits
from realtime.ordering import OrderedStream
from realtime.presence import get_presence_store
from rooms.events import ReadUpdatedEvent, RoomUpdatedEvent
from rooms.limits import RateLimited
from rooms.models import Room

logger = logging.getLogger(__name__)


class ChatConsumer(RealtimeConsumer):
    """One socket of one user in one room."""

    user: User
    room_id: int
    socket_id: str
    # In the room's presence: its entry counts until the socket leaves.
    present = False
    # The room's changes in rev order, from hello's last_rev.
    stream: OrderedStream[ChangeFrame]
    # The newest message the client has (its message.new), and the user's read marker
    # (kept by read.updated): each socket's unread count for room.updated comes from them.
    last_seq = 0
    last_read_seq = 0

    async def open(self) -> None:
        user = scope_user(self.scope)
        assert user is not None  # the base admitted only an authenticated socket
        self.user = user
        self.room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.socket_id = uuid.uuid4().hex
        # Subscribe before reading the room, so no change committed after hello's
        # last_rev is missed; one committed before it is dropped as a duplicate. Events
        # wait until hello has gone out (``holding``).
        await self.subscribe(room_group(self.room_id), user_group(self.user.pk))
        presence = get_presence_store()
        # Who is online is read before this socket joins (it adds itself), so that the
        # database is one thread hop: the room, the access check and the hello.
        online = await presence.online(self.room_id)
        room, access, hello = await database_sync_to_async(socket_open)(
            room_id=self.room_id, user=self.user, online_ids=[*online, self.user.pk]
        )
        if room is None or hello is None:
            self.unsubscribe()
            not_member = access is RoomAccess.NOT_MEMBER
            await self.close_with(frames.CLOSE_FORBIDDEN if not_member else frames.CLOSE_NOT_FOUND)
            return
        joined = await presence.join(self.room_id, self.user.pk, self.socket_id)
        self.present = True
        if joined.user_sockets > settings.CHAT_MAX_SOCKETS_PER_USER:
            await self.close_from_server(frames.CLOSE_TOO_MANY)
            return
        self.stream = OrderedStream(
            hello["last_rev"],
            fetch=self._changes_after,
            emit=self._emit_changes,
            name=f"room {self.room_id}",
        )
        self.last_seq = hello["last_seq"]
        self.last_read_seq = hello["last_seq"] - (room.unread_count or 0)
        await self.send_frame(hello)
        # Open from the greeting on, before anything else is awaited: the hub's re-checks
        # (and the held events) must not wait for the presence broadcast.
        await self.opened()
        if joined.first:
            try:
                await events.send_presence(room_id=self.room_id, user=self.user, status="online")
            except Exception:  # the socket is open and greeted: a lost event must not close it
                logger.warning("presence broadcast failed for room %s", self.room_id)

    async def closed(self, *, was_open: bool) -> None:
        if was_open:
            self.stream.close()
        if self.present:
            self.present = False
            try:
                last = await get_presence_store().leave(self.room_id, self.user.pk, self.socket_id)
                if last:
                    await events.send_presence(
                        room_id=self.room_id, user=self.user, status="offline"
                    )
            except Exception:
                logger.exception("presence leave failed for room %s", self.room_id)

    async def refresh_presence(self) -> None:
        if self.present:
            await get_presence_store().refresh(self.room_id, self.user.pk, self.socket_id)

    # The room's changes, in rev order -------------------------------------------------

    async def deliver(self, event: Mapping[str, Any]) -> None:
        # Nearly every event: straight to the stream, without the base's handler lookup
        # (once per event per socket, the busiest path of the process).
        if event["type"] == MESSAGE_CHANGES and not self.holding:
            await self.stream.offer(event["frames"])
        else:
            await super().deliver(event)

    async def on_event_message_changes(self, event: Mapping[str, Any]) -> None:
        await self.stream.offer(event["frames"])  # one that was held back

    async def _emit_changes(self, changes: list[ChangeFrame]) -> None:
        # Straight to the server's send (what ``self.send`` ends in): once per frame
        # per socket, the busiest line of the process.
        send = self.base_send
        for _, seq, text in changes:
            await send({"type": "websocket.send", "text": text})
            if seq > self.last_seq:
                self.last_seq = seq

    async def _changes_after(self, rev: int) -> list[ChangeFrame]:
        return await database_sync_to_async(socket_changes_after)(
            room_id=self.room_id, after=rev, known_seq=self.last_seq
        )

    # Client frames -------------------------------------------------------------------

    async def on_message_send(self, frame: frames.Frame) -> None:
        try:
            data = message_input(frame)
        except ValidationError as error:
            raise invalid(error.detail) from None
        # The event of this message may reach the hub before the ack is out; the
        # sender must see the ack first, so its events wait until then.
        self.holding = True
        try:
            payload = await get_writer().submit(
                MessageDraft(room_id=self.room_id, author=self.user, **data)
            )
            # Sending moves the sender's read marker to the message.
            self.last_read_seq = max(self.last_read_seq, payload["seq"])
            # Only now, after commit: the ack promises the message is stored.
            ack: events.AckFrame = {
                "type": "message.ack",
                "client_id": data.get("client_id"),
                "message": payload,
            }
            await self.send_frame(ack)
        finally:
            await self.release()

    async def on_typing(self, frame: frames.Frame) -> None:
        is_typing = validated(TypingFrameSerializer, frame)["is_typing"]
        # At most once a second per user per room, whatever is_typing says; the last
        # word of a second goes out when it is over.
        send = functools.partial(
            events.send_typing, room_id=self.room_id, user=self.user, is_typing=is_typing
        )
        if get_process_limits().typing.offer(self.room_id, self.user.pk, send):
            await send()

    async def on_read(self, frame: frames.Frame) -> None:
        seq = validated(ReadFrameSerializer, frame)["seq"]
        await database_sync_to_async(socket_mark_read)(
            room_id=self.room_id, user=self.user, seq=seq
        )

    async def on_auth(self, frame: frames.Frame) -> None:
        token = validated(AuthFrameSerializer, frame)["token"]
        if await self._revoked():
            return
        found = await database_sync_to_async(get_user_for_token)(token)
        if found is None or found[0].pk != self.user.pk:
            raise invalid({"token": ["Not a valid access token of this socket's user."]})
        exp = found[1].get("exp")
        self.close_at_expiry(exp)
        expires_at = datetime.fromtimestamp(exp, tz=UTC).isoformat().replace("+00:00", "Z")
        await self.send_frame({"type": "auth.ok", "expires_at": expires_at})

    frame_handlers = {
        "message.send": on_message_send,
        "typing": on_typing,
        "read": on_read,
        "ping": RealtimeConsumer.on_ping,
        "auth": on_auth,
    }

    async def frame_failed(self, error: Exception, client_id: str | None) -> bool:
        if isinstance(error, RateLimited):
            await self.send_error(
                FrameError(
                    "rate_limited",
                    "You are sending faster than this room allows.",
                    retry_after=max(0.001, round(error.retry_after, 3)),
                ),
                client_id,
            )
        elif isinstance(error, NotAMember | PermissionDenied):
            await self.close_from_server(frames.CLOSE_FORBIDDEN)
        elif isinstance(error, Room.DoesNotExist):
            await self.close_from_server(frames.CLOSE_NOT_FOUND)
        else:
            return False
        return True

    # Other events, from the hub --------------------------------------------------------

    async def on_event_typing(self, event: events.UserFrameEvent) -> None:
        if event["user_id"] != self.user.pk:
            await self.send(text_data=event["text"])

    on_event_presence = on_event_typing

    async def on_event_room_updated(self, event: RoomUpdatedEvent) -> None:
        # The room as everyone sees it, with this user's fields from what the socket
        # holds: no database call per socket (a room of 200 sockets is one read).
        room = dict(event["room"])
        room["is_member"] = True
        room["role"] = "owner" if room["owner"]["id"] == self.user.pk else "member"
        room["unread_count"] = max(0, event["last_seq"] - self.last_read_seq)
        await self.send_frame({"type": "room.updated", "room": room})

    async def on_event_read_updated(self, event: ReadUpdatedEvent) -> None:
        if event["room"] == self.room_id:
            self.last_read_seq = max(self.last_read_seq, event["seq"])

    async def on_event_room_deleted(self, event: Mapping[str, Any]) -> None:
        await self.send_frame({"type": "room.deleted", "room": event["room"]})
        await self.close_from_server(frames.CLOSE_NOT_FOUND)

    async def on_event_member_removed(self, event: Mapping[str, Any]) -> None:
        if event["user_id"] == self.user.pk:
            await self.close_from_server(frames.CLOSE_FORBIDDEN)

    async def on_event_user_signed_out(self, event: Mapping[str, Any]) -> None:
        await self.close_from_server(frames.CLOSE_UNAUTHORIZED, event["reason"])

    # Re-checks, from the hub and on auth frames ------------------------------------------

    @classmethod
    async def recheck_sockets(cls, sockets: list[Any]) -> None:
        """Closes the sockets whose users may no longer be in their rooms, as the lost
        event would have: one query for all of them."""
        open_sockets: list[ChatConsumer] = [s for s in sockets if s.is_open]
        if not open_sockets:
            return
        check = await database_sync_to_async(socket_access_check)(
            sockets=[(s.room_id, s.user.pk) for s in open_sockets]
        )
        for socket in open_sockets:
            try:
                await socket._recheck(check)
            except Exception as error:
                logger.warning("re-checking a socket failed: %r", error)

    async def _recheck(self, check: SocketAccessCheck) -> None:
        """4401 deactivated, 4404 the room is gone, 4403 no longer a member."""
        code = _revoked_code(check, room_id=self.room_id, user_id=self.user.pk)
        if code is not None and self.is_open:
            await self.close_from_server(code)

    async def _revoked(self) -> bool:
        """Re-checks this socket alone (an ``auth`` frame); True if it was closed."""
        check = await database_sync_to_async(socket_access_check)(
            sockets=[(self.room_id, self.user.pk)]
        )
        await self._recheck(check)
        return not self.is_open

    @classmethod
    async def catch_up_sockets(cls, sockets: list[Any]) -> None:
        """Brings every socket up to its room's newest change, even if no later event
        shows the gap (a quiet room after Redis lost its groups): one query."""
        open_sockets: list[ChatConsumer] = [s for s in sockets if s.is_open]
        if not open_sockets:
            return
        last_revs = await database_sync_to_async(socket_rooms_last_rev)(
            room_ids={s.room_id for s in open_sockets}
        )
        for socket in open_sockets:
            # Greeting, or waiting for an ack: next time.
            if socket.room_id in last_revs and not socket.holding:
                socket.stream.expect(last_revs[socket.room_id])


def _revoked_code(check: SocketAccessCheck, *, room_id: int, user_id: int) -> int | None:
    """The code a socket of ``user_id`` in ``room_id`` closes with, or None if it may stay."""
    if (room_id, user_id) in check.members:
        return None
    if user_id in check.inactive:
        return frames.CLOSE_UNAUTHORIZED
    if room_id not in check.rooms:
        return frames.CLOSE_NOT_FOUND
    # As on ``member.removed`` (API.md: removed while connected), public room or not.
    return frames.CLOSE_FORBIDDEN
