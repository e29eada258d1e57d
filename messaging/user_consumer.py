"""The user socket, ``/ws/``: one socket per device for every room of its user.

It hears the user's group (``room.joined``, ``room.left``, ``read.updated``,
``user.signed_out``) and the group of every room the user is a member of or watches,
and keeps one ``RoomState`` per such room: the room's changes in ``rev`` order from the
revision its ``hello`` (or ``room.joined``, or ``watching``) announced, and the
positions that its unread count comes from. Typing and presence pass only for watched
rooms. The rules live where the room socket's do (``messaging.sockets``, services);
what both kinds of socket share is in ``messaging.consumers``.
"""

import asyncio
import functools
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError

from accounts.models import User
from accounts.serializers import user_brief
from messaging import events
from messaging.consumers import (
    announce_presence_soon,
    connect_presence,
    leave_presence,
    online_briefs,
    rate_limited_error,
    renew_token,
)
from messaging.events import MESSAGE_CHANGES, ChangeFrame
from messaging.middleware import scope_user
from messaging.serializers import (
    ReadFrameSerializer,
    RoomFrameSerializer,
    TypingFrameSerializer,
    message_input,
)
from messaging.services import MessageDraft, NotAMember
from messaging.sockets import (
    UserSocketCheck,
    socket_changes_after,
    socket_mark_read,
    socket_room_payloads,
    socket_room_visible,
    socket_rooms_last_rev,
    socket_user_check,
    socket_user_rooms,
    socket_watch,
)
from messaging.writer import get_writer
from realtime import frames
from realtime.consumer import Closed, RealtimeConsumer
from realtime.frames import FrameError, invalid, validated
from realtime.groups import room_group, user_group
from realtime.limits import get_process_limits
from realtime.ordering import OrderedStream
from realtime.presence import get_presence_store
from rooms.limits import RateLimited
from rooms.models import Room

logger = logging.getLogger(__name__)

# Watched rooms per socket, at most (API.md: watch).
MAX_WATCHED = 20


class RoomState:
    """One room on one user socket: a room the user is a member of, or watches, or both."""

    __slots__ = ("last_read_seq", "last_seq", "member", "room_id", "stream", "watched")

    def __init__(
        self,
        socket: "UserConsumer",
        room_id: int,
        *,
        last_rev: int,
        last_seq: int,
        last_read_seq: int,
        member: bool,
    ) -> None:
        self.room_id = room_id
        self.member = member
        self.watched = False
        # The newest message the client has (its message.new), and the read marker.
        self.last_seq = last_seq
        self.last_read_seq = last_read_seq
        self.stream: OrderedStream[ChangeFrame] = OrderedStream(
            last_rev,
            fetch=functools.partial(socket.changes_after, self),
            emit=functools.partial(socket.emit_changes, self),
            name=f"room {room_id} on a user socket",
        )

    @property
    def unread_count(self) -> int:
        return max(0, self.last_seq - self.last_read_seq)


class UserConsumer(RealtimeConsumer):
    """One socket of one user, for all of their rooms."""

    user: User
    socket_id: str
    present = False
    presence_task: "asyncio.Task[None] | None" = None
    # Reading the rooms' newest revisions after joining their groups (or a new room's).
    catch_up_task: "asyncio.Task[None] | None" = None
    rooms: dict[int, RoomState]

    async def open(self) -> None:
        user = scope_user(self.scope)
        assert user is not None  # the base admitted only an authenticated socket
        self.user = user
        self.socket_id = uuid.uuid4().hex
        self.rooms = {}
        # The user's group first: a room joined or left after the rooms are read below
        # is an event held until hello is out (``holding``), so none falls between.
        await self.subscribe(user_group(user.pk))
        connected = await connect_presence(user.pk, self.socket_id)
        self.present = True
        if connected.user_sockets > settings.CHAT_MAX_SOCKETS_PER_USER:
            await self.close_from_server(frames.CLOSE_TOO_MANY)
            return
        positions = await database_sync_to_async(socket_user_rooms)(user_id=user.pk)
        for position in positions:
            self.rooms[position.room_id] = RoomState(
                self,
                position.room_id,
                last_rev=position.last_rev,
                last_seq=position.last_seq,
                last_read_seq=position.last_read_seq,
                member=True,
            )
        await self.subscribe(*(room_group(room_id) for room_id in self.rooms))
        await self.send_frame(
            {
                "type": "hello",
                "user": user_brief(user),
                "rooms": [position.hello_entry() for position in positions],
            }
        )
        await self.opened()
        if connected.first:
            self.presence_task = announce_presence_soon(user, "online")
        # What was committed between reading the positions and joining the rooms' groups
        # reached nobody here: the rooms' newest revisions, read now, show it.
        self.catch_up_soon(list(self.rooms))

    async def closed(self, *, was_open: bool) -> None:
        for state in getattr(self, "rooms", {}).values():
            state.stream.close()
        if self.catch_up_task is not None:
            self.catch_up_task.cancel()
        if self.present:
            self.present = False
            await leave_presence(
                self.user, self.socket_id, after=self.presence_task, rooms=list(self.rooms)
            )

    async def refresh_presence(self) -> None:
        if self.present:
            await get_presence_store().refresh(self.user.pk, self.socket_id)

    # Rooms coming and going --------------------------------------------------------------

    async def add_room(
        self, room_id: int, *, last_rev: int, last_seq: int, last_read_seq: int, member: bool
    ) -> RoomState:
        state = self.rooms[room_id] = RoomState(
            self,
            room_id,
            last_rev=last_rev,
            last_seq=last_seq,
            last_read_seq=last_read_seq,
            member=member,
        )
        await self.subscribe(room_group(room_id))
        return state

    def drop_room(self, room_id: int) -> RoomState | None:
        """No event of the room reaches the client from now on."""
        state = self.rooms.pop(room_id, None)
        if state is not None:
            state.stream.close()
            self.unsubscribe(room_group(room_id))
        return state

    def catch_up_soon(self, room_ids: list[int]) -> None:
        """Brings the rooms up to their newest revisions from the database, in a task:
        an event handler must not hold the hub's delivery for a query."""
        if not room_ids:
            return
        previous = self.catch_up_task
        self.catch_up_task = asyncio.create_task(self._catch_up(room_ids, previous))

    async def _catch_up(self, room_ids: list[int], previous: "asyncio.Task[None] | None") -> None:
        try:
            if previous is not None and not previous.done():
                await previous
            if self.holding:
                # Waiting for its ack: a gap filled now could show the sender its message
                # before the ack. Once that is out.
                asyncio.get_running_loop().call_later(0.05, self.catch_up_soon, room_ids)
                return
            last_revs = await database_sync_to_async(socket_rooms_last_rev)(room_ids=room_ids)
            for room_id in room_ids:
                state = self.rooms.get(room_id)
                if state is None:
                    continue
                if room_id in last_revs:
                    state.stream.expect(last_revs[room_id])
                else:  # deleted before this socket joined its group
                    await self.room_gone(room_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("could not catch a user socket up; the hub retries", exc_info=True)

    async def room_gone(self, room_id: int) -> None:
        state = self.drop_room(room_id)
        if state is None:
            return
        await self.send_frame({"type": "room.deleted", "room": room_id})
        if state.member:
            await self.send_frame({"type": "room.left", "room": room_id, "reason": "deleted"})

    # The rooms' changes, in rev order -----------------------------------------------------

    async def deliver(self, event: Mapping[str, Any]) -> None:
        # The busiest path: a room's changes straight to its stream.
        if event["type"] == MESSAGE_CHANGES and not self.holding:
            state = self.rooms.get(event["room"])
            if state is not None:
                await state.stream.offer(event["frames"])
        else:
            await super().deliver(event)

    async def on_event_message_changes(self, event: Mapping[str, Any]) -> None:
        state = self.rooms.get(event["room"])
        if state is not None:
            await state.stream.offer(event["frames"])

    async def emit_changes(self, state: RoomState, changes: list[ChangeFrame]) -> None:
        send = self.base_send
        for _, seq, text in changes:
            await send({"type": "websocket.send", "text": text})
            if seq > state.last_seq:
                state.last_seq = seq

    async def changes_after(self, state: RoomState, rev: int) -> list[ChangeFrame]:
        return await database_sync_to_async(socket_changes_after)(
            room_id=state.room_id, after=rev, known_seq=state.last_seq
        )

    # Events of the user's group ------------------------------------------------------------

    async def on_event_room_joined(self, event: Mapping[str, Any]) -> None:
        room = event["room"]
        room_id = room["id"]
        state = self.rooms.get(room_id)
        if state is not None and state.member:
            return  # already held (the hello had it)
        last_read_seq = room["last_seq"] - (room["unread_count"] or 0)
        if state is None:
            await self.add_room(
                room_id,
                last_rev=room["last_rev"],
                last_seq=room["last_seq"],
                last_read_seq=last_read_seq,
                member=True,
            )
        else:  # watched, and now joined
            state.member = True
            state.last_read_seq = last_read_seq
        await self.send_frame({"type": "room.joined", "room": room})
        # Changes committed between the room's reading and this socket joining its group.
        self.catch_up_soon([room_id])

    async def on_event_room_left(self, event: Mapping[str, Any]) -> None:
        room_id = event["room"]
        state = self.rooms.get(room_id)
        if state is None or not state.member:
            return
        self.drop_room(room_id)
        await self.send_frame({"type": "room.left", "room": room_id, "reason": event["reason"]})

    async def on_event_read_updated(self, event: Mapping[str, Any]) -> None:
        state = self.rooms.get(event["room"])
        if state is None or not state.member:
            return
        state.last_read_seq = max(state.last_read_seq, event["seq"])
        await self.send_frame(
            {
                "type": "read.updated",
                "room": event["room"],
                "seq": event["seq"],
                "unread_count": event["unread_count"],
                "mention_count": event["mention_count"],
            }
        )

    async def on_event_user_signed_out(self, event: Mapping[str, Any]) -> None:
        await self.close_from_server(frames.CLOSE_UNAUTHORIZED, event["reason"])

    # Events of the rooms' groups -----------------------------------------------------------

    async def on_event_typing(self, event: events.UserFrameEvent) -> None:
        state = self.rooms.get(event["room"])
        if state is not None and state.watched and event["user_id"] != self.user.pk:
            await self.send(text_data=event["text"])

    on_event_presence = on_event_typing

    async def on_event_room_updated(self, event: Mapping[str, Any]) -> None:
        room = dict(event["room"])
        state = self.rooms.get(room["id"])
        if state is None:
            return
        if state.member:
            room["is_member"] = True
            room["role"] = "owner" if room["owner"]["id"] == self.user.pk else "member"
            room["unread_count"] = max(0, event["last_seq"] - state.last_read_seq)
        elif room["visibility"] != Room.Visibility.PUBLIC:
            # A watched channel that went private is no longer the watcher's to see.
            self.drop_room(state.room_id)
            await self.send_frame({"type": "unwatched", "room": state.room_id})
            return
        else:
            room["is_member"], room["role"], room["unread_count"] = False, None, None
        await self.send_frame({"type": "room.updated", "room": room})

    async def on_event_room_deleted(self, event: Mapping[str, Any]) -> None:
        await self.room_gone(event["room"])

    # Client frames ---------------------------------------------------------------------------

    def echo_of(self, frame: frames.Frame) -> Mapping[str, Any] | None:
        room = frame.get("room")
        if type(room) is int:
            return {"room": room}
        return None

    async def member_room(self, frame: frames.Frame) -> RoomState:
        """The member room the frame names; ``forbidden`` or ``not_found`` otherwise."""
        room_id = validated(RoomFrameSerializer, frame)["room"]
        state = self.rooms.get(room_id)
        if state is not None and state.member:
            return state
        visible = await database_sync_to_async(socket_room_visible)(room_id=room_id, user=self.user)
        if visible:
            raise FrameError("forbidden", "You are not a member of this room.")
        raise FrameError("not_found", "No such room.")

    async def on_message_send(self, frame: frames.Frame) -> None:
        state = await self.member_room(frame)
        try:
            data = message_input(frame)
        except ValidationError as error:
            raise invalid(error.detail) from None
        # The sender sees the ack before the message's event.
        self.holding = True
        try:
            payload = await get_writer().submit(
                MessageDraft(room_id=state.room_id, author=self.user, **data)
            )
            state.last_read_seq = max(state.last_read_seq, payload["seq"])
            ack: events.AckFrame = {
                "type": "message.ack",
                "client_id": data.get("client_id"),
                "message": payload,
            }
            await self.send_frame(ack)
        finally:
            await self.release()

    async def on_typing(self, frame: frames.Frame) -> None:
        state = await self.member_room(frame)
        is_typing = validated(TypingFrameSerializer, frame)["is_typing"]
        send = functools.partial(
            events.send_typing, room_id=state.room_id, user=self.user, is_typing=is_typing
        )
        if get_process_limits().typing.offer(state.room_id, self.user.pk, send):
            await send()

    async def on_read(self, frame: frames.Frame) -> None:
        state = await self.member_room(frame)
        seq = validated(ReadFrameSerializer, frame)["seq"]
        await database_sync_to_async(socket_mark_read)(
            room_id=state.room_id, user=self.user, seq=seq
        )

    async def on_watch(self, frame: frames.Frame) -> None:
        room_id = validated(RoomFrameSerializer, frame)["room"]
        state = self.rooms.get(room_id)
        if (state is None or not state.watched) and self.watched_count() >= MAX_WATCHED:
            raise invalid({"room": [f"At most {MAX_WATCHED} rooms can be watched at once."]})
        # The room's events wait while it is read, so none committed after it is missed
        # (the stream drops those that were before).
        self.holding = True
        try:
            subscribed = room_group(room_id) in self.subscriptions
            if not subscribed:
                await self.subscribe(room_group(room_id))
            room, member_ids = await database_sync_to_async(socket_watch)(
                room_id=room_id, user=self.user
            )
            if room is None:
                if not subscribed:
                    self.unsubscribe(room_group(room_id))
                raise FrameError("not_found", "No such room.")
            online = await online_briefs(self.user, member_ids)
            state = self.rooms.get(room_id)
            if state is None:
                state = self.rooms[room_id] = RoomState(
                    self,
                    room_id,
                    last_rev=room.room.last_rev,
                    last_seq=room.room.last_seq,
                    last_read_seq=room.room.last_seq,
                    member=False,
                )
            state.watched = True
            await self.send_frame(
                {
                    "type": "watching",
                    "room": room_id,
                    "online": online,
                    "last_seq": room.room.last_seq,
                    "last_rev": room.room.last_rev,
                }
            )
        finally:
            await self.release()

    def watched_count(self) -> int:
        return sum(1 for state in self.rooms.values() if state.watched)

    async def on_unwatch(self, frame: frames.Frame) -> None:
        room_id = validated(RoomFrameSerializer, frame)["room"]
        state = self.rooms.get(room_id)
        if state is not None:
            if state.member:
                state.watched = False
            else:
                self.drop_room(room_id)
        await self.send_frame({"type": "unwatched", "room": room_id})

    async def on_auth(self, frame: frames.Frame) -> None:
        await renew_token(self, frame)

    frame_handlers = {
        "message.send": on_message_send,
        "typing": on_typing,
        "read": on_read,
        "watch": on_watch,
        "unwatch": on_unwatch,
        "ping": RealtimeConsumer.on_ping,
        "auth": on_auth,
    }

    async def frame_failed(self, error: Exception) -> FrameError | Closed | None:
        # A user socket never closes because of one room: losing it is an event.
        if isinstance(error, RateLimited):
            return rate_limited_error(error)
        if isinstance(error, NotAMember | PermissionDenied):
            return FrameError("forbidden", "You are not a member of this room.")
        if isinstance(error, Room.DoesNotExist):
            return FrameError("not_found", "No such room.")
        return None

    # Re-checks, from the hub and on auth frames -----------------------------------------------

    @classmethod
    async def recheck_sockets(cls, sockets: list[Any]) -> None:
        """Brings every user socket's rooms in line with the database, as the lost
        events would have: one database hop for all of them."""
        open_sockets: list[UserConsumer] = [s for s in sockets if s.is_open]
        if not open_sockets:
            return
        check = await database_sync_to_async(socket_user_check)(
            user_ids={s.user.pk for s in open_sockets},
            room_ids={room_id for s in open_sockets for room_id in s.rooms},
        )
        for socket in open_sockets:
            try:
                await socket.recheck(check)
            except Exception as error:
                logger.warning("re-checking a user socket failed: %r", error)

    async def recheck(self, check: UserSocketCheck) -> None:
        if not self.is_open:
            return
        if self.user.pk not in check.active:
            await self.close_from_server(frames.CLOSE_UNAUTHORIZED)
            return
        member_of = check.memberships.get(self.user.pk, frozenset())
        for room_id, state in list(self.rooms.items()):
            if room_id not in check.rooms:
                await self.room_gone(room_id)
            elif state.member and room_id not in member_of:
                await self.on_event_room_left(
                    {"type": "room.left", "room": room_id, "reason": "removed"}
                )
        joined = [r for r in member_of if r not in self.rooms or not self.rooms[r].member]
        if joined:
            await self.rooms_joined_late(joined)

    async def rooms_joined_late(self, room_ids: Iterable[int]) -> None:
        payloads = await database_sync_to_async(socket_room_payloads)(
            user=self.user, room_ids=list(room_ids)
        )
        for room in payloads:
            await self.on_event_room_joined({"type": "room.joined", "room": room})

    async def _revoked(self) -> bool:
        """Re-checks this socket alone (an ``auth`` frame); True if it was closed."""
        check = await database_sync_to_async(socket_user_check)(
            user_ids={self.user.pk}, room_ids=set(self.rooms)
        )
        await self.recheck(check)
        return not self.is_open

    @classmethod
    async def catch_up_sockets(cls, sockets: list[Any]) -> None:
        """Brings every room of every user socket up to its newest change: one query."""
        open_sockets: list[UserConsumer] = [s for s in sockets if s.is_open and not s.holding]
        if not open_sockets:
            return
        last_revs = await database_sync_to_async(socket_rooms_last_rev)(
            room_ids={room_id for s in open_sockets for room_id in s.rooms}
        )
        for socket in open_sockets:
            if socket.holding:
                continue
            for room_id, state in list(socket.rooms.items()):
                if room_id in last_revs:
                    state.stream.expect(last_revs[room_id])
