"""A lean WebSocket client for the load generator: websockets' sans-I/O protocol on asyncio.

The load generator has one core for thousands of frames a second, so it skips the
per-message queue and futures of ``websockets.asyncio.client``: an ``asyncio.Protocol``
feeds bytes to ``websockets.client.ClientProtocol`` (the same parser, masking and
handshake code, C speedups included) and hands each text message to a callback as it
is parsed. The handshake, pings, pongs and the closing handshake are the real ones.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

OP_TEXT = Opcode.TEXT
OP_BINARY = Opcode.BINARY
OP_CONT = Opcode.CONT
CLOSE_LINGER = 2.0  # seconds to wait for the server to close TCP after the close handshake


class HandshakeFailed(Exception):
    pass


class WSClient(asyncio.Protocol):
    """One client connection. ``on_text(str)`` is called for each text message."""

    def __init__(
        self,
        uri: str,
        headers: Iterable[tuple[str, str]],
        on_text: Callable[[str], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.proto = ClientProtocol(parse_uri(uri), max_size=None)
        self.request = self.proto.connect()
        for name, value in headers:
            self.request.headers[name] = value
        self.on_text = on_text
        self.loop = loop
        self.opened: asyncio.Future[None] = loop.create_future()
        # A failed handshake nobody awaits any more must not log "never retrieved".
        self.opened.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] | None = None
        self._linger: asyncio.TimerHandle | None = None

    # asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is not a subclass)
        self.proto.send_request(self.request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        for event in proto.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is OP_TEXT:
                    if event.fin:
                        self.on_text(bytes(event.data).decode())
                    else:
                        self._fragments = [bytes(event.data)]
                elif opcode is OP_CONT and self._fragments is not None:
                    self._fragments.append(bytes(event.data))
                    if event.fin:
                        text = b"".join(self._fragments).decode()
                        self._fragments = None
                        self.on_text(text)
                elif opcode is OP_BINARY:
                    self._fragments = None  # the contract has no binary server frames
            elif isinstance(event, Response) and not self.opened.done():
                if proto.handshake_exc is not None:
                    self.opened.set_exception(HandshakeFailed(str(proto.handshake_exc)))
                else:
                    self.opened.set_result(None)
        self._flush()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if not self.opened.done():
            self.opened.set_exception(HandshakeFailed(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.proto.close_code)

    # API -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.proto.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        return self.proto.close_code

    def send_text(self, text: str) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_text(text.encode())
            self._flush()

    def close(self, code: int = 1000) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_close(code)
            self._flush()
        elif self.transport is not None and self.proto.state is State.CONNECTING:
            self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.proto.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.proto.close_expected() and self._linger is None:
            self._linger = self.loop.call_later(CLOSE_LINGER, transport.abort)


async def connect(
    host: str,
    port: int,
    path: str,
    *,
    token: str | None,
    on_text: Callable[[str], None],
    within: float,
    rcvbuf: int | None = None,
) -> WSClient:
    """Open a connection and finish the opening handshake (not the app's ``hello``).

    ``rcvbuf`` sets the socket's ``SO_RCVBUF`` before it connects (a client that reads
    slowly, with ``client.transport.pause_reading()``, then backs up the server sooner).
    """
    loop = asyncio.get_running_loop()
    headers = [("Authorization", f"Bearer {token}")] if token else []
    client = WSClient(f"ws://{host}:{port}{path}", headers, on_text, loop)
    sock = None
    try:
        if rcvbuf is None:
            await asyncio.wait_for(loop.create_connection(lambda: client, host, port), within)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), within)
            await asyncio.wait_for(loop.create_connection(lambda: client, sock=sock), within)
        await asyncio.wait_for(asyncio.shield(client.opened), within)
    except BaseException:
        client.abort()
        if sock is not None and client.transport is None:
            sock.close()
        raise
    return client
