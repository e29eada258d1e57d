"""The lean WebSocket consumer base that every socket of the service stands on.

It owns what a socket is, whatever it carries: the handshake (accepted first, so that a
refusal is a close code the client can read, never a bare HTTP 403), the identity from
the verified token (``scope["user"]``, set by the token middleware), the per-address
and per-frame limits, parsing and dispatching client frames to a table of handlers,
error frames, the hub subscription, holding events back while the client must see
something first, the token's expiry and closing. Subclasses say what a socket opens
with (``open``), which frames it takes (``frame_handlers``) and how it handles events
(``on_event_<type>`` methods; a subclass may take its busiest event type straight in
``deliver`` before calling this one). Nothing here knows rooms, messages or users
beyond ``is_authenticated``.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from realtime import frames
from realtime.frames import FrameError
from realtime.hub import get_hub
from realtime.limits import FrameBucket, get_process_limits

logger = logging.getLogger(__name__)

FrameHandler = Callable[[Any, frames.Frame], Awaitable[None]]


class Closed:
    """``frame_failed``'s answer when it closed the socket rather than answer the frame."""


CLOSED = Closed()


class RealtimeConsumer(AsyncWebsocketConsumer):
    """One socket. Subclasses implement ``open``; ``is_open`` once it has greeted."""

    # Client frame type -> handler (an unbound method of the subclass).
    frame_handlers: ClassVar[dict[str, FrameHandler]] = {}

    is_open = False
    subscriptions: frozenset[str] = frozenset()
    address: str | None = None
    expiry: asyncio.TimerHandle | None = None
    # Whether events wait in ``held`` (until the greeting is out, or an ack), and those
    # waiting; the deque is made only when one does.
    holding = True
    held: deque[Mapping[str, Any]] | None = None
    # The socket's inbound frame limit, made on its first frame.
    frame_bucket: FrameBucket | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' loop (await_many_dispatch) wraps every receive in a task of its own
        # to race it against the socket's channel. These sockets have none (events come
        # through the process's hub): one plain loop, and an idle socket holds one task
        # less.
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

    # Opening and closing ----------------------------------------------------------

    async def connect(self) -> None:
        await self.accept()
        try:
            if await self._admit():
                await self.open()
        except Exception:
            # The database or the channel layer failed us: no traceback for the client,
            # a code that says "try again later".
            logger.exception("could not open a socket at %s", self.scope.get("path"))
            await self.close_from_server(frames.CLOSE_UNAVAILABLE)

    async def _admit(self) -> bool:
        """The address limit and the identity; False when the socket was closed."""
        client = self.scope.get("client")
        if client:
            if not get_process_limits().addresses.add(client[0]):
                await self.close_with(frames.CLOSE_TOO_MANY, "too many sockets from this address")
                return False
            self.address = client[0]
        if self.scope.get("auth_unavailable"):
            raise DatabaseError("the database could not authenticate this socket")
        if not getattr(self.scope.get("user"), "is_authenticated", False):
            await self.close_with(frames.CLOSE_UNAUTHORIZED)
            return False
        return True

    async def open(self) -> None:
        """Checks what the socket may see, subscribes, greets, then ``opened()``."""
        raise NotImplementedError

    async def opened(self) -> None:
        """The greeting is out: start the token's clock and let the held events through."""
        self.is_open = True
        self.close_at_expiry(self.scope.get("token_exp"))
        await self.release()

    async def disconnect(self, code: int) -> None:
        if self.address is not None:
            get_process_limits().addresses.remove(self.address)
            self.address = None
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self.unsubscribe()
        was_open, self.is_open = self.is_open, False
        await self.closed(was_open=was_open)

    async def closed(self, *, was_open: bool) -> None:
        """The socket is gone (or going): undo what ``open`` did beyond the groups."""

    async def subscribe(self, *groups: str) -> None:
        """Hears the groups' events from now on (besides those it already hears)."""
        hub = get_hub()
        for group in groups:
            if group not in self.subscriptions:
                self.subscriptions |= {group}
                await hub.subscribe(group, self)

    def unsubscribe(self, *groups: str) -> None:
        """Stops hearing the groups' events; with none named, every group's."""
        hub = get_hub()
        for group in groups or self.subscriptions:
            hub.unsubscribe(group, self)
        self.subscriptions = self.subscriptions.difference(groups) if groups else frozenset()

    def close_at_expiry(self, exp: float | None) -> None:
        """A socket lives as long as its access token, unless it is renewed.

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
            self.close_from_server(frames.CLOSE_UNAUTHORIZED, "token expired")
        )

    async def close_with(self, code: int, reason: str | None = None) -> None:
        await self.close(code=code, reason=reason or frames.CLOSE_REASONS.get(code))

    async def close_from_server(self, code: int, reason: str | None = None) -> None:
        """Closes, and leaves at once: presence and the groups must not wait for the
        client's close frame."""
        await self.close_with(code, reason)
        await self.disconnect(code)

    # Events, from the hub ------------------------------------------------------------

    async def deliver(self, event: Mapping[str, Any]) -> None:
        """Called by the hub with each event of this socket's groups, in arrival order."""
        if self.holding:
            if self.held is None:
                self.held = deque()
            self.held.append(event)
        else:
            await self._handle_event(event)

    async def _handle_event(self, event: Mapping[str, Any]) -> None:
        handler = getattr(self, "on_event_" + get_handler_name(event), None)
        if handler is not None:
            await handler(event)

    async def release(self) -> None:
        """Hands on the events held back, in order, then lets new ones straight through."""
        while self.held:
            await self._handle_event(self.held.popleft())
        self.held = None
        self.holding = False

    async def refresh_presence(self) -> None:
        """Called by the hub every ``CHAT_REFRESH_SECONDS``."""

    @classmethod
    async def recheck_sockets(cls, sockets: list[Any]) -> None:
        """Called by the hub for all of this class's sockets before it re-joins groups."""

    @classmethod
    async def catch_up_sockets(cls, sockets: list[Any]) -> None:
        """Called by the hub for all of this class's sockets after it re-joined groups."""

    # Client frames -------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.is_open:
            return  # opening or closing: frames that raced it are ignored
        if text_data is not None and frames.too_large(text_data):
            await self.close_from_server(frames.CLOSE_TOO_LARGE)
            return
        if self.frame_bucket is None:
            self.frame_bucket = FrameBucket()
        wait = self.frame_bucket.take()
        if wait is not None:
            await self._refuse_frame(text_data, wait)
            return
        client_id = None
        echo: Mapping[str, Any] | None = None
        try:
            value, client_id = frames.parse_frame(text_data)
            frame = frames.frame_of(value)
            echo = self.echo_of(frame)
            handler = self.frame_handlers.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type']!r}.")
            await handler(self, frame)
        except FrameError as error:
            await self.send_error(error, client_id, echo)
        except DatabaseError:
            logger.exception("database error on a frame at %s", self.scope.get("path"))
            await self.send_error(
                FrameError("unavailable", "The server could not store this; send it again."),
                client_id,
                echo,
            )
        except Exception as error:
            answer = await self.frame_failed(error)
            if answer is None:
                logger.exception("unexpected error on a frame at %s", self.scope.get("path"))
                answer = FrameError(
                    "server_error", "The server failed on this frame; send it again."
                )
            if isinstance(answer, FrameError):
                await self.send_error(answer, client_id, echo)

    def echo_of(self, frame: frames.Frame) -> Mapping[str, Any] | None:
        """What of a client frame its error frame repeats besides ``client_id``."""
        return None

    async def frame_failed(self, error: Exception) -> "FrameError | Closed | None":
        """A handler raised ``error``, which is no ``FrameError``: the error frame that
        answers it, ``CLOSED`` if the handler closed the socket instead, or None for a
        server error."""
        return None

    async def _refuse_frame(self, text_data: str | None, wait: float) -> None:
        """A frame over the socket's limit: answered at once, without the database, and
        otherwise ignored; a socket that keeps on is closed (API.md, Limits)."""
        assert self.frame_bucket is not None
        if self.frame_bucket.flooding:
            logger.info("closing a socket at %s: frames kept coming too fast", self.scope["path"])
            await self.close_from_server(frames.CLOSE_TOO_MANY, "too many frames")
            return
        await self.send_error(
            FrameError(
                "rate_limited",
                "You are sending frames faster than the server allows.",
                retry_after=max(0.001, round(wait, 3)),
            ),
            frames.client_id_in(text_data),
        )

    async def send_error(
        self, error: FrameError, client_id: str | None, echo: Mapping[str, Any] | None = None
    ) -> None:
        await self.send_frame(error.frame(client_id, echo))

    async def send_frame(self, frame: Any) -> None:
        await self.send(text_data=frames.encode_frame(frame))

    async def on_ping(self, frame: frames.Frame) -> None:
        await self.send(text_data='{"type":"pong"}')


class NoRouteConsumer(AsyncWebsocketConsumer):
    """A WebSocket path that is no socket of ours: accepted, then closed with 4404."""

    # No channel-layer channel for it (Channels makes one only for a configured alias).
    channel_layer_alias = "realtime.no-channel"

    async def connect(self) -> None:
        logger.info("no WebSocket route for %r", self.scope.get("path"))
        await self.accept()
        await self.close(code=frames.CLOSE_NOT_FOUND, reason="no such socket")
