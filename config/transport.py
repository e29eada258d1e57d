"""Limits that daphne's WebSocket transport does not enforce, added to its protocol class.

daphne (autobahn on Twisted) leaves four things to the application that only the
transport can do, and this module does them (API.md, "Limits"):

- **Unsent data.** Twisted buffers whatever a socket has not sent yet without bound, so
  a client that never reads grows the server by everything its rooms say. A socket
  whose unsent data passes ``CHAT_MAX_UNSENT_BYTES`` is closed with 4408: the transport
  tells a registered producer when its buffer is full (``pauseProducing``) and when it
  has drained (``resumeProducing``); what is written in between is what waits.
- **Keepalive.** daphne pings a socket only after ``--ping-interval`` seconds without an
  inbound frame, so a client that sends anything every 20 s is never pinged and never
  found dead. Here the ping runs on its timer whatever the client sends, and autobahn
  drops a socket that does not answer within ``--ping-timeout``.
- **Inbound queue.** daphne queues every inbound frame for the application without
  bound. A socket with more than ``CHAT_MAX_QUEUED_FRAMES`` frames waiting is closed
  with 4429, and when a socket closes, the frames still queued are dropped, never
  handled (the consumer's own per-socket limit is in ``realtime.limits``).
- **Close frames.** autobahn drops the TCP connection without a close frame for a frame
  over daphne's ``--websocket-max-message-size`` (clients saw 1006 and resent the same
  frame forever); here it closes with 1009. And daphne drops the reason an application
  gives with its close code; here it is sent.

``install()`` puts the protocol in daphne's factory; ``config.asgi`` calls it before
daphne builds its factory, so ``daphne config.asgi:application`` gets the limits
however it is started. Under another ASGI server the consumer's own limits still hold.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

from realtime.frames import CLOSE_NOT_READING, CLOSE_TOO_MANY

logger = logging.getLogger(__name__)

# How long a socket closed here keeps its TCP connection for the closing handshake, so
# that a client busy writing (or reading what waited for it) still gets the close frame
# rather than a reset. autobahn's default is one second.
CLOSE_GRACE_SECONDS = 5.0


def install() -> None:
    """Makes daphne build its WebSocket protocols from ``LimitedWebSocketProtocol``."""
    WebSocketFactory.protocol = LimitedWebSocketProtocol


class _SendWindow:
    """A streaming producer on the socket's transport: counts what waits to be sent."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.paused = False
        self.unsent = 0

    def pauseProducing(self) -> None:
        # The transport's buffer is full (its bufferSize): from now on, every byte
        # written waits behind it. (Twisted calls this on every write while full.)
        if not self.paused:
            self.paused = True
            self.unsent = 0

    def resumeProducing(self) -> None:
        self.paused = False
        self.unsent = 0

    def stopProducing(self) -> None:
        self.paused = False

    def wrote(self, size: int) -> bool:
        """Counts ``size`` bytes written; whether the socket is now over its limit."""
        if not self.paused:
            return False
        self.unsent += size
        return self.unsent > settings.CHAT_MAX_UNSENT_BYTES


class LimitedWebSocketProtocol(WebSocketProtocol):
    """daphne's ``WebSocketProtocol`` with the limits of this module."""

    # daphne's and autobahn's, which carry no types.
    last_ping: float
    muted: bool

    window: _SendWindow | None = None
    # Sends from the application are dropped once the socket is being closed here.
    closing_here = False

    def connectionMade(self) -> None:
        super().connectionMade()
        # Close with 1009 rather than drop the connection on an oversized frame.
        self.failByDrop = False
        # Only a pong answers a ping: autobahn would take any frame as one.
        self.autoPingRestartOnAnyTraffic = False
        self.window = _SendWindow(self)
        # The HTTP channel that carried the upgrade is still registered on the
        # transport (it pauses reading while its response cannot be written): the
        # socket takes over.
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        self.transport.registerProducer(self.window, True)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # daphne resets its ping timer on every inbound frame; keep it running.
        last_ping = self.last_ping
        if self.muted or self.closing_here:
            return
        queue = getattr(self, "application_queue", None)
        if queue is not None and queue.qsize() >= settings.CHAT_MAX_QUEUED_FRAMES:
            logger.info("closing a socket of %s: too many frames queued", self.client_addr)
            self._close_here(CLOSE_TOO_MANY, "too many frames queued")
            return
        super().onMessage(payload, isBinary)
        self.last_ping = last_ping

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        # The client has gone: what it sent and the application has not handled yet
        # is dropped, and the application hears of the close at once.
        self._drop_queued_frames()
        if self.window is not None:
            self.window.stopProducing()
        super().onClose(wasClean, code, reason)

    def handle_reply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if self.closing_here and kind in ("websocket.send", "websocket.close"):
            return
        if kind == "websocket.close" and self.state != self.STATE_CONNECTING:
            self._drop_queued_frames()
            code = message.get("code") or 1000
            self.closeHandshakeTimeout = CLOSE_GRACE_SECONDS
            self.sendClose(code=code, reason=message.get("reason") or None)
            return
        super().handle_reply(message)
        if kind == "websocket.send" and self.window is not None:
            size = len(message.get("text") or message.get("bytes") or "")
            if self.window.wrote(size):
                logger.info("closing a socket of %s: it does not read", self.client_addr)
                self._close_here(CLOSE_NOT_READING, "not reading")

    def _close_here(self, code: int, reason: str) -> None:
        """Closes from the transport and tells the application at once."""
        self.closing_here = True
        self._drop_queued_frames()
        queue = getattr(self, "application_queue", None)
        if queue is not None and not self.muted:
            queue.put_nowait({"type": "websocket.disconnect", "code": code})
        # daphne then sends the application nothing more, a second disconnect
        # included.
        self.muted = True
        self.closeHandshakeTimeout = CLOSE_GRACE_SECONDS
        self.sendClose(code=code, reason=reason)

    def _drop_queued_frames(self) -> None:
        queue = getattr(self, "application_queue", None)
        if queue is None or queue.empty():
            return
        kept = []
        while not queue.empty():
            item = queue.get_nowait()
            if item.get("type") != "websocket.receive":
                kept.append(item)
        for item in kept:
            queue.put_nowait(item)
