"""The chat WebSocket: transport only. Rules live in services and selectors."""

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from rest_framework.exceptions import ValidationError

from accounts.models import User
from messaging import events
from messaging.hub import get_hub
from messaging.limits import FrameBucket, get_process_limits
from messaging.middleware import get_user_for_token, scope_user
from messaging.ordering import SeqOrderer
from messaging.presence import get_presence_store
from messaging.serializers import (
    AuthFrameSerializer,
    ReadFrameSerializer,
    TypingFrameSerializer,
    message_input,
)
from messaging.services import MessageDraft, NotAMember, RateLimited
from messaging.sockets import (
    RoomAccess,
    SocketAccessCheck,
    socket_access_check,
    socket_mark_read,
    socket_messages_after,
    socket_open,
)
from messaging.writer import get_writer
from rooms.models import Room

logger = logging.getLogger(__name__)

# Application close codes live in 4000-4999 (RFC 6455 section 7.4.2).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_MANY = 4429
# Not in the contract's table: the server could not open the socket (its database or
# channel layer is down); reconnect later. (daphne allows only 1000 and 3000-4999.)
CLOSE_UNAVAILABLE = 4503
# The close frame's reason, for people reading a log or a client's debugger; clients
# act on the code.
CLOSE_REASONS = {
    CLOSE_UNAUTHORIZED: "not authenticated",
    CLOSE_FORBIDDEN: "not a member",
    CLOSE_NOT_FOUND: "no such room",
    CLOSE_TOO_LARGE: "frame too large",
    CLOSE_TOO_MANY: "too many sockets",
    CLOSE_UNAVAILABLE: "server unavailable, try again",
}

# How long an out-of-order message waits for the ones before it before the socket
# reads the missing ones from the database.
GAP_WAIT = 0.5


class FrameError(Exception):
    """A bad client frame: answered with an error frame, and the socket stays open."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


def _error_detail(errors: dict[str, Any]) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else messages
        parts.append(f"{field}: {text}")
    return "; ".join(parts)


def _invalid(errors: Any) -> FrameError:
    return FrameError("validation_error", _error_detail(errors), errors=errors)


def _validated(serializer_class: type, frame: dict[str, Any]) -> dict[str, Any]:
    serializer = serializer_class(data=frame)
    if not serializer.is_valid():
        raise _invalid(serializer.errors)
    return dict(serializer.validated_data)


class ChatConsumer(AsyncWebsocketConsumer):
    """One socket of one user in one room."""

    # No channel of its own: channel-layer events reach the socket through its
    # process's hub (messaging.hub), one subscription per room per process. Channels
    # gives a consumer a channel only when its alias names a configured layer.
    channel_layer_alias = "chat.no-channel-per-socket"

    user: User
    room_id: int
    socket_id: str
    subscriptions: tuple[str, ...] = ()
    joined = False
    address: str | None = None
    # The socket's inbound frame limit (messaging.limits), made on its first frame.
    frames: FrameBucket | None = None
    # Events that arrive while the socket holds them back (see ``_open``); created
    # only when one does.
    held: deque[dict[str, Any]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' loop (await_many_dispatch) wraps every receive in a task of its own
        # to race it against the socket's channel. These sockets have no channel: one
        # plain loop, and an idle socket holds one task less.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch hops to a worker thread before every message to close stale
        # database connections. Every database call here goes through
        # database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        # Accept first: daphne turns a close before accept into a bare HTTP 403, and
        # clients must see the 44xx code (API.md).
        await self.accept()
        try:
            await self._open()
        except Exception:
            # The database or the channel layer failed us: no traceback for the client,
            # a code that says "try again later".
            logger.exception("could not open a socket in room %s", self.scope["url_route"])
            await self._close_from_server(CLOSE_UNAVAILABLE)

    async def _open(self) -> None:
        client = self.scope.get("client")
        if client:
            if not get_process_limits().addresses.add(client[0]):
                await self._close(CLOSE_TOO_MANY, "too many sockets from this address")
                return
            self.address = client[0]
        if self.scope.get("auth_unavailable"):
            raise DatabaseError("the database could not authenticate this socket")
        user = scope_user(self.scope)
        if user is None:
            await self._close(CLOSE_UNAUTHORIZED)
            return
        self.user = user
        self.room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.socket_id = uuid.uuid4().hex
        # Events wait in ``held`` until hello has gone out (and later, while a send
        # waits for its ack), so the client sees them after, in arrival order.
        self.holding = True
        self.gap_task: asyncio.Task[None] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        # Subscribe before reading the room, so no message committed after hello's
        # last_seq is missed; one committed before it is dropped as a duplicate.
        self.subscriptions = (events.room_group_name(self.room_id), events.user_group_name(user.pk))
        hub = get_hub()
        for group in self.subscriptions:
            await hub.subscribe(group, self)
        presence = get_presence_store()
        # Who is online is read before this socket joins (it adds itself), so that the
        # database is one thread hop: the room, the access check and the hello.
        online = await presence.online(self.room_id)
        room, access, hello = await database_sync_to_async(socket_open)(
            room_id=self.room_id, user=user, online_ids=[*online, user.pk]
        )
        if room is None or hello is None:
            self._unsubscribe()
            await self._close(_close_code_for(access))
            return
        joined = await presence.join(self.room_id, user.pk, self.socket_id)
        self.joined = True
        if joined.user_sockets > settings.CHAT_MAX_SOCKETS_PER_USER:
            await self._close_from_server(CLOSE_TOO_MANY)
            return
        self.orderer = SeqOrderer(hello["last_seq"])
        self.deliver_lock = asyncio.Lock()
        # The user's read marker in the room, kept up to date by ``read.updated``: each
        # socket computes its own unread count for ``room.updated`` from it.
        self.last_read_seq = hello["last_seq"] - (room.unread_count or 0)
        await self.send(text_data=events.encode_frame(hello))
        if joined.first:
            try:
                await events.send_presence(room_id=self.room_id, user=user, status="online")
            except Exception:  # the socket is open and greeted: a lost event must not close it
                logger.warning("presence broadcast failed for room %s", self.room_id)
        self._close_at_expiry(self.scope.get("token_exp"))
        await self._release()

    async def disconnect(self, code: int) -> None:
        if self.address is not None:
            get_process_limits().addresses.remove(self.address)
            self.address = None
        gap_task = getattr(self, "gap_task", None)
        if gap_task is not None and gap_task is not asyncio.current_task():
            gap_task.cancel()
        if getattr(self, "expiry", None) is not None:
            self.expiry.cancel()
        self._unsubscribe()
        if self.joined:
            self.joined = False
            try:
                last = await get_presence_store().leave(self.room_id, self.user.pk, self.socket_id)
                if last:
                    await events.send_presence(
                        room_id=self.room_id, user=self.user, status="offline"
                    )
            except Exception:
                logger.exception("presence leave failed for room %s", self.room_id)

    def _unsubscribe(self) -> None:
        hub = get_hub()
        for group in self.subscriptions:
            hub.unsubscribe(group, self)
        self.subscriptions = ()

    def _close_at_expiry(self, exp: float | None) -> None:
        """A socket lives as long as its access token, unless an ``auth`` frame renews it.

        A timer handle rather than a sleeping task: it weighs a fraction as much, and an
        idle process holds thousands of sockets.
        """
        if self.expiry is not None:
            self.expiry.cancel()
        self.expiry = None
        if exp is None:
            return
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_at(loop.time() + max(0.0, exp - time.time()), self._expired)

    def _expired(self) -> None:
        self.expiry = None
        # Kept on the socket: the loop holds only a weak reference to a task.
        self.expired_close = asyncio.create_task(
            self._close_from_server(CLOSE_UNAUTHORIZED, "token expired")
        )

    async def refresh_presence(self) -> None:
        """Called by the hub every ``CHAT_REFRESH_SECONDS``, so a live socket keeps counting."""
        if self.joined:
            await get_presence_store().refresh(self.room_id, self.user.pk, self.socket_id)

    async def deliver(self, event: dict[str, Any]) -> None:
        """Called by the hub with each event of this socket's groups, in arrival order."""
        if self.holding:
            if self.held is None:
                self.held = deque()
            self.held.append(event)
        elif event["type"] == "message.new":  # nearly every event: no handler lookup
            await self.on_event_message_new(event)
        else:
            await self._handle_event(event)

    async def _handle_event(self, event: dict[str, Any]) -> None:
        handler = getattr(self, "on_event_" + get_handler_name(event), None)
        if handler is not None:
            await handler(event)

    async def _release(self) -> None:
        """Hands on the events held back, in order, then lets new ones straight through."""
        while self.held:
            await self._handle_event(self.held.popleft())
        self.held = None
        self.holding = False

    # Client frames ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "joined", False):
            return  # closing: frames that raced the close are ignored
        if text_data is not None and _too_large(text_data):
            await self._close_from_server(CLOSE_TOO_LARGE)
            return
        if self.frames is None:
            self.frames = FrameBucket()
        wait = self.frames.take()
        if wait is not None:
            await self._refuse_frame(text_data, wait)
            return
        client_id = None
        try:
            if text_data is None:
                raise FrameError("invalid_json", "Frames must be text holding one JSON object.")
            try:
                frame = json.loads(text_data, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                raise FrameError("invalid_json", "The frame is not valid JSON.") from None
            # Echoed in any error, a wrong type's included (API.md).
            if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
                client_id = frame["client_id"]
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                raise FrameError("invalid_frame", "A frame is a JSON object with a string type.")
            handler = self.frame_handlers.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type']!r}.")
            await handler(self, frame)
        except FrameError as error:
            await self._send_error(error, client_id)
        except RateLimited as limited:
            await self._send_error(
                FrameError(
                    "rate_limited",
                    "You are sending faster than this room allows.",
                    retry_after=max(0.001, round(limited.retry_after, 3)),
                ),
                client_id,
            )
        except (NotAMember, PermissionDenied):
            await self._close_from_server(CLOSE_FORBIDDEN)
        except Room.DoesNotExist:
            await self._close_from_server(CLOSE_NOT_FOUND)
        except DatabaseError:
            logger.exception("database error on a frame in room %s", self.room_id)
            await self._send_error(
                FrameError("unavailable", "The server could not store this; send it again."),
                client_id,
            )
        except Exception:
            logger.exception("unexpected error on a frame in room %s", self.room_id)
            await self._send_error(
                FrameError("server_error", "The server failed on this frame; send it again."),
                client_id,
            )

    async def _refuse_frame(self, text_data: str | None, wait: float) -> None:
        """A frame over the socket's limit: answered at once, without the database, and
        otherwise ignored; a socket that keeps on is closed (API.md, Limits)."""
        assert self.frames is not None
        if self.frames.flooding:
            logger.info("closing a socket of user %s: frames kept coming too fast", self.user.pk)
            await self._close_from_server(CLOSE_TOO_MANY, "too many frames")
            return
        client_id = None
        if text_data is not None and '"client_id"' in text_data:
            with contextlib.suppress(ValueError, RecursionError):
                frame = json.loads(text_data)
                if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
                    client_id = frame["client_id"]
        await self._send_error(
            FrameError(
                "rate_limited",
                "You are sending frames faster than the server allows.",
                retry_after=max(0.001, round(wait, 3)),
            ),
            client_id,
        )

    async def _send_error(self, error: FrameError, client_id: str | None) -> None:
        frame = {"type": "error", "code": error.code, "detail": error.detail}
        frame.update(error.extra)
        frame["client_id"] = client_id
        await self.send(text_data=events.encode_frame(frame))

    async def on_message_send(self, frame: dict[str, Any]) -> None:
        try:
            data = message_input(frame)
        except ValidationError as invalid:
            raise _invalid(invalid.detail) from None
        # The broadcast of this message may reach the hub before the ack is out; the
        # sender must see the ack first, so its events wait until then.
        self.holding = True
        try:
            payload = await get_writer().submit(
                MessageDraft(room_id=self.room_id, author=self.user, **data)
            )
            # Sending moves the sender's read marker to the message.
            self.last_read_seq = max(self.last_read_seq, payload["seq"])
            # Only now, after commit: the ack promises the message is stored.
            await self.send(
                text_data=events.encode_frame(
                    {"type": "message.ack", "client_id": data.get("client_id"), "message": payload}
                )
            )
        finally:
            await self._release()

    async def on_typing(self, frame: dict[str, Any]) -> None:
        is_typing = _validated(TypingFrameSerializer, frame)["is_typing"]
        # At most once a second per user per room, whatever is_typing says; the last
        # word of a second goes out when it is over.
        send = functools.partial(
            events.send_typing, room_id=self.room_id, user=self.user, is_typing=is_typing
        )
        if get_process_limits().typing.offer(self.room_id, self.user.pk, send):
            await send()

    async def on_read(self, frame: dict[str, Any]) -> None:
        seq = _validated(ReadFrameSerializer, frame)["seq"]
        await database_sync_to_async(socket_mark_read)(
            room_id=self.room_id, user=self.user, seq=seq
        )

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send(text_data='{"type":"pong"}')

    async def on_auth(self, frame: dict[str, Any]) -> None:
        token = _validated(AuthFrameSerializer, frame)["token"]
        if await self.revoked():
            return
        found = await database_sync_to_async(get_user_for_token)(token)
        if found is None or found[0].pk != self.user.pk:
            raise _invalid({"token": ["Not a valid access token of this socket's user."]})
        exp = found[1].get("exp")
        self._close_at_expiry(exp)
        expires_at = datetime.fromtimestamp(exp, tz=UTC).isoformat().replace("+00:00", "Z")
        await self.send(
            text_data=events.encode_frame({"type": "auth.ok", "expires_at": expires_at})
        )

    frame_handlers = {
        "message.send": on_message_send,
        "typing": on_typing,
        "read": on_read,
        "ping": on_ping,
        "auth": on_auth,
    }

    # Channel-layer events, from the hub --------------------------------------------

    async def on_event_message_new(self, event: dict[str, Any]) -> None:
        # Straight to the server's send (what ``self.send`` ends in): once per frame
        # per socket, the busiest line of the process.
        send = self.base_send
        async with self.deliver_lock:
            for seq, text in event["frames"]:
                for ready in self.orderer.offer(seq, text):
                    await send({"type": "websocket.send", "text": ready})
        if self.orderer.has_gap and self.gap_task is None:
            self.gap_task = asyncio.create_task(self._fill_gap())

    async def _fill_gap(self) -> None:
        try:
            await asyncio.sleep(GAP_WAIT)
            while self.orderer.has_gap:
                missing = await database_sync_to_async(socket_messages_after)(
                    room_id=self.room_id, after=self.orderer.last_seq
                )
                if not missing:
                    break
                async with self.deliver_lock:
                    for seq, text in missing:
                        for ready in self.orderer.offer(seq, text):
                            await self.send(text_data=ready)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not fill a seq gap in room %s", self.room_id)
        finally:
            self.gap_task = None

    async def on_event_message_updated(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def on_event_message_deleted(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def on_event_typing(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.user.pk:
            await self.send(text_data=event["text"])

    async def on_event_presence(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.user.pk:
            await self.send(text_data=event["text"])

    async def on_event_room_updated(self, event: dict[str, Any]) -> None:
        # The room as everyone sees it, with this user's fields from what the socket
        # holds: no database call per socket (a room of 200 sockets is one read).
        room = dict(event["room"])
        room["is_member"] = True
        room["role"] = "owner" if room["owner"]["id"] == self.user.pk else "member"
        room["unread_count"] = max(0, event["last_seq"] - self.last_read_seq)
        await self.send(text_data=events.encode_frame({"type": "room.updated", "room": room}))

    async def on_event_read_updated(self, event: dict[str, Any]) -> None:
        if event["room"] == self.room_id:
            self.last_read_seq = max(self.last_read_seq, event["seq"])

    async def on_event_room_deleted(self, event: dict[str, Any]) -> None:
        await self.send(
            text_data=events.encode_frame({"type": "room.deleted", "room": event["room"]})
        )
        await self._close_from_server(CLOSE_NOT_FOUND)

    async def on_event_member_removed(self, event: dict[str, Any]) -> None:
        if event["user_id"] == self.user.pk:
            await self._close_from_server(CLOSE_FORBIDDEN)

    async def on_event_user_signed_out(self, event: dict[str, Any]) -> None:
        await self._close_from_server(CLOSE_UNAUTHORIZED, event["reason"])

    # Re-checks, from the hub and on auth frames -------------------------------------

    def access_key(self) -> tuple[int, int] | None:
        """What the hub re-checks for this socket; None until hello has gone out."""
        return (self.room_id, self.user.pk) if self.joined else None

    async def recheck(self, check: SocketAccessCheck) -> None:
        """Closes the socket, as the lost broadcast would have, if its user may no longer
        be in its room: 4401 deactivated, 4404 the room is gone, 4403 no longer a member."""
        code = _revoked_code(check, room_id=self.room_id, user_id=self.user.pk)
        if code is not None and self.joined:
            await self._close_from_server(code)

    async def revoked(self) -> bool:
        """Re-checks this socket alone (an ``auth`` frame); True if it was closed."""
        key = self.access_key()
        if key is None:
            return False
        check = await database_sync_to_async(socket_access_check)(sockets=[key])
        await self.recheck(check)
        return not self.joined

    async def catch_up(self, last_seq: int) -> None:
        """Called by the hub after it re-joined the groups: the room's newest message is
        ``last_seq``. Whatever this socket lacks up to it is read from the database, in
        order, even if no later broadcast shows the gap (a quiet room after Redis lost
        its groups)."""
        if not self.joined or self.holding:  # greeting, or waiting for an ack: next time
            return
        self.orderer.expect(last_seq)
        if self.orderer.has_gap and self.gap_task is None:
            self.gap_task = asyncio.create_task(self._fill_gap())

    async def _close(self, code: int, reason: str | None = None) -> None:
        await self.close(code=code, reason=reason or CLOSE_REASONS.get(code))

    async def _close_from_server(self, code: int, reason: str | None = None) -> None:
        await self._close(code, reason)
        # Leave at once: presence and the group must not wait for the client's close.
        await self.disconnect(code)


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are Python's extensions to JSON, not JSON."""
    raise ValueError(f"{name} is not JSON")


def _too_large(text: str) -> bool:
    limit = settings.CHAT_MAX_FRAME_BYTES
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def _revoked_code(check: SocketAccessCheck, *, room_id: int, user_id: int) -> int | None:
    """The code a socket of ``user_id`` in ``room_id`` closes with, or None if it may stay."""
    if (room_id, user_id) in check.members:
        return None
    if user_id in check.inactive:
        return CLOSE_UNAUTHORIZED
    if room_id not in check.rooms:
        return CLOSE_NOT_FOUND
    # As on ``member.removed`` (API.md: removed while connected), public room or not.
    return CLOSE_FORBIDDEN


def _close_code_for(access: RoomAccess) -> int:
    if access is RoomAccess.NOT_MEMBER:
        return CLOSE_FORBIDDEN
    return CLOSE_NOT_FOUND


class NoRouteConsumer(AsyncWebsocketConsumer):
    """A WebSocket path that is no socket of ours: accepted, then closed with 4404."""

    # No channel-layer channel for it (Channels makes one only for a configured alias).
    channel_layer_alias = "chat.no-channel"

    async def connect(self) -> None:
        logger.info("no WebSocket route for %r", self.scope.get("path"))
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND, reason="no such socket")
