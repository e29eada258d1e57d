"""The room WebSocket, ``/ws/rooms/{id}/``: an adapter over ``realtime.consumer``.

What it opens with (the room, the access check, ``hello``), the frames it takes, and
how it shows each event; the rules live in services and selectors (through
``messaging.sockets``, one thread hop each), the transport in the realtime base.
"""

import asyncio
import functools
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError

from accounts.models import User
from accounts.serializers import user_brief
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
    socket_hello,
    socket_mark_read,
    socket_open,
    socket_rooms_last_rev,
    socket_user_briefs,
    socket_user_room_ids,
)
from messaging.writer import get_writer
from realtime import frames
from realtime.consumer import CLOSED, Closed, RealtimeConsumer
from realtime.frames import FrameError, invalid, validated
from realtime.groups import room_group, user_group
from realtime.limits import get_process_limits
from realtime.ordering import OrderedStream
from realtime.presence import ONLINE_LIST_MAX, Connected, get_presence_store
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
    # Announcing the user online, off the socket's path (its frames must not wait).
    presence_task: "asyncio.Task[None] | None" = None
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
        room, access, member_ids = await database_sync_to_async(socket_open)(
            room_id=self.room_id, user=self.user
        )
        if room is None or access is not RoomAccess.MEMBER:
            self.unsubscribe()
            not_member = access is RoomAccess.NOT_MEMBER
            await self.close_with(frames.CLOSE_FORBIDDEN if not_member else frames.CLOSE_NOT_FOUND)
            return
        connected = await connect_presence(self.user.pk, self.socket_id)
        self.present = True
        if connected.user_sockets > settings.CHAT_MAX_SOCKETS_PER_USER:
            await self.close_from_server(frames.CLOSE_TOO_MANY)
            return
        online = await online_briefs(self.user, member_ids)
        hello = socket_hello(room=room, user=self.user, online=online)
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
        if connected.first:
            self.presence_task = announce_presence_soon(self.user, "online")

    async def closed(self, *, was_open: bool) -> None:
        if was_open:
            self.stream.close()
        if self.present:
            self.present = False
            await leave_presence(
                self.user, self.socket_id, after=self.presence_task, rooms=[self.room_id]
            )

    async def refresh_presence(self) -> None:
        if self.present:
            await get_presence_store().refresh(self.user.pk, self.socket_id)

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
        await renew_token(self, frame)

    frame_handlers = {
        "message.send": on_message_send,
        "typing": on_typing,
        "read": on_read,
        "ping": RealtimeConsumer.on_ping,
        "auth": on_auth,
    }

    async def frame_failed(self, error: Exception) -> FrameError | Closed | None:
        if isinstance(error, RateLimited):
            return rate_limited_error(error)
        if isinstance(error, NotAMember | PermissionDenied):
            await self.close_from_server(frames.CLOSE_FORBIDDEN)
            return CLOSED
        if isinstance(error, Room.DoesNotExist):
            await self.close_from_server(frames.CLOSE_NOT_FOUND)
            return CLOSED
        return None

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


# Shared by both kinds of socket (this one and ``messaging.user_consumer``) ---------------


async def connect_presence(user_id: int, socket_id: str) -> Connected:
    """The socket counts for the user's presence (and their socket limit) from now."""
    return await get_presence_store().connect(user_id, socket_id)


async def online_briefs(user: User, member_ids: list[int]) -> list[dict[str, Any]]:
    """Brief Users of those of ``member_ids`` who are online, ``user`` always among them
    (their socket is opening), at most ``ONLINE_LIST_MAX``; no database call when
    nobody else is."""
    online = set(await get_presence_store().online(member_ids))
    online.add(user.pk)
    ids = sorted(online)[:ONLINE_LIST_MAX]
    if ids == [user.pk]:
        return [user_brief(user)]
    return await database_sync_to_async(socket_user_briefs)(user_ids=ids)


async def announce_presence(user: User, status: str, *, also: Iterable[int] = ()) -> None:
    """Every room of the user hears that they came online or went offline (their first
    socket opened, their last one closed), and the rooms ``also`` (the closing socket's,
    which the user may have just been removed from). Never raises: a lost event must not
    close a greeted socket."""
    try:
        room_ids = await database_sync_to_async(socket_user_room_ids)(user_id=user.pk)
        rooms = sorted({*room_ids, *also})
        await events.send_presence(room_ids=rooms, user=user, status=status)
    except Exception:
        logger.warning("presence broadcast for user %s failed", user.pk, exc_info=True)


def announce_presence_soon(user: User, status: str) -> "asyncio.Task[None]":
    """``announce_presence`` in a task of its own: the socket's frames do not wait for
    the database and the layer (kept by the caller: the loop holds tasks weakly)."""
    return asyncio.create_task(announce_presence(user, status))


async def leave_presence(
    user: User,
    socket_id: str,
    *,
    after: "asyncio.Task[None] | None" = None,
    rooms: Iterable[int] = (),
) -> None:
    """The socket no longer counts; if it was the user's last, they go offline (after
    ``after``, the socket's own online announcement, if that is still going out: then in
    a task, so that closing never waits for the channel layer)."""
    try:
        last = await get_presence_store().disconnect(user.pk, socket_id)
    except Exception:
        logger.warning("presence leave failed for user %s", user.pk, exc_info=True)
        return
    if not last:
        return
    if after is not None and not after.done():
        task = asyncio.create_task(_announce_offline_after(after, user, list(rooms)))
        _announcing.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_announcing.discard)
        return
    await announce_presence(user, "offline", also=rooms)


_announcing: set["asyncio.Task[None]"] = set()


async def _announce_offline_after(
    online: "asyncio.Task[None]", user: User, rooms: list[int]
) -> None:
    await online
    await announce_presence(user, "offline", also=rooms)


def rate_limited_error(error: RateLimited) -> FrameError:
    return FrameError(
        "rate_limited",
        "You are sending faster than this room allows.",
        retry_after=max(0.001, round(error.retry_after, 3)),
    )


class RenewingSocket(Protocol):
    user: User
    is_open: bool

    async def _revoked(self) -> bool: ...
    def close_at_expiry(self, exp: float | None) -> None: ...
    async def send_frame(self, frame: Any) -> None: ...


async def renew_token(socket: RenewingSocket, frame: frames.Frame) -> None:
    """An ``auth`` frame: a fresh access token of the same user moves the socket's
    expiry (API.md: Token renewal), after re-checking that the socket may stay."""
    token = validated(AuthFrameSerializer, frame)["token"]
    if await socket._revoked():
        return
    found = await database_sync_to_async(get_user_for_token)(token)
    if found is None or found[0].pk != socket.user.pk:
        raise invalid({"token": ["Not a valid access token of this socket's user."]})
    exp = found[1].get("exp")
    socket.close_at_expiry(exp)
    expires_at = datetime.fromtimestamp(exp, tz=UTC).isoformat().replace("+00:00", "Z")
    await socket.send_frame({"type": "auth.ok", "expires_at": expires_at})
