"""Client side of the end-to-end tests: a running server, plain HTTP and a real WebSocket.

Everything here talks to the server the way an outside client does: JSON over
``http.client`` and frames over the ``websockets`` package. Nothing imports the
project's code, so a test passes only if the served contract holds.
"""

import asyncio
import contextlib
import http.client
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

HOST = "127.0.0.1"
# The servers sign tokens with this key, so a test can forge one (expired, say).
SECRET_KEY = "e2e-secret-key-not-for-production"
PASSWORD = "correct-horse-battery-staple-42"
RECEIVE_TIMEOUT = 5.0
FRAME_LIMIT = 16 * 1024  # API.md: client frames hold at most 16 KiB


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers (lower-case names) and the decoded JSON body."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    """One daphne process serving ``config.asgi:application`` on ``HOST:port``."""

    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    # Fault-injection tests expect server-side errors; the others fail on any traceback.
    allow_errors: bool = False
    name: str = field(default="server")

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ws_url(self, room_id: int, *, token: str | None = None) -> str:
        query = f"?{urlencode({'token': token})}" if token is not None else ""
        return f"ws://{HOST}:{self.port}/ws/rooms/{room_id}/{query}"

    def user_ws_url(self, *, token: str | None = None) -> str:
        query = f"?{urlencode({'token': token})}" if token is not None else ""
        return f"ws://{HOST}:{self.port}/ws/{query}"

    def output(self) -> str:
        """What the process wrote so far, for failure messages."""
        parts = []
        for label, path in (("stderr", self.stderr_path), ("stdout", self.stdout_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {self.name} {label} ---\n{text.strip()}")
        return "\n".join(parts)

    def request(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """Send one request; ``url`` is a path or an absolute URL on this server (a ``next``)."""
        parts = urlsplit(url)
        if parts.scheme:
            assert (parts.scheme, parts.netloc) == ("http", f"{HOST}:{self.port}"), (
                f"{url} does not point at this server ({self.http_url})"
            )
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        sent_headers = {"Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        if token is not None:
            sent_headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            connection.request(method, target, body=payload, headers=sent_headers)
            answer = connection.getresponse()
            raw = answer.read()
            response_headers = {name.lower(): value for name, value in answer.getheaders()}
        finally:
            connection.close()
        return Response(answer.status, response_headers, json.loads(raw) if raw else None)


@dataclass(frozen=True)
class Account:
    """A registered user as a client holds it: ids and tokens."""

    id: int
    username: str
    access: str
    refresh: str


def register(server: Server, username: str) -> Account:
    """Sign a user up; the access token is the one the registration answered with."""
    answer = server.request(
        "POST",
        "/api/v1/auth/register/",
        body={"username": username, "password": PASSWORD, "display_name": username.title()},
    )
    assert answer.status == 201, answer
    assert answer.body["user"]["username"] == username
    return Account(
        id=answer.body["user"]["id"],
        username=username,
        access=answer.body["access"],
        refresh=answer.body["refresh"],
    )


def register_all(server: Server, *usernames: str) -> list[Account]:
    return [register(server, username) for username in usernames]


def log_in(server: Server, account: Account) -> Account:
    """Obtain a fresh token pair with the password, as a returning client does."""
    answer = server.request(
        "POST",
        "/api/v1/auth/token/",
        body={"username": account.username, "password": PASSWORD},
    )
    assert answer.status == 200, answer
    return Account(
        id=account.id,
        username=account.username,
        access=answer.body["access"],
        refresh=answer.body["refresh"],
    )


def create_room(server: Server, owner: Account, name: str) -> dict[str, Any]:
    answer = server.request("POST", "/api/v1/rooms/", token=owner.access, body={"name": name})
    assert answer.status == 201, answer
    assert answer.body["role"] == "owner"
    return dict(answer.body)


def join_room(server: Server, account: Account, room_id: int) -> None:
    answer = server.request("POST", f"/api/v1/rooms/{room_id}/join/", token=account.access)
    assert answer.status == 200, answer
    assert answer.body["is_member"] is True


def post_message(
    server: Server, author: Account, room_id: int, body: str, client_id: str | None = None
) -> dict[str, Any]:
    data = {"body": body} if client_id is None else {"body": body, "client_id": client_id}
    answer = server.request(
        "POST", f"/api/v1/rooms/{room_id}/messages/", token=author.access, body=data
    )
    assert answer.status == 201, answer
    return dict(answer.body)


def history(server: Server, account: Account, url: str) -> dict[str, Any]:
    """One page of history; ``url`` a path with its query, or a ``next`` link."""
    answer = server.request("GET", url, token=account.access)
    assert answer.status == 200, answer
    assert set(answer.body) == {"next", "previous", "results"}, answer.body
    return dict(answer.body)


@contextlib.asynccontextmanager
async def open_socket(
    server: Server,
    room_id: int,
    *,
    token: str | None,
    via: str = "header",
    origin: str | None = None,
) -> AsyncIterator[ClientConnection]:
    """A WebSocket to a room, authenticated by header (apps) or query string (browsers)."""
    if via not in ("header", "query"):
        raise ValueError(via)
    headers = {"Authorization": f"Bearer {token}"} if token is not None and via == "header" else {}
    url = server.ws_url(room_id, token=token if via == "query" else None)
    async with connect(
        url,
        additional_headers=headers,
        origin=Origin(origin) if origin is not None else None,
        proxy=None,
        open_timeout=10,
        close_timeout=5,
    ) as socket:
        yield socket


@contextlib.asynccontextmanager
async def open_user_socket(
    server: Server, *, token: str | None, via: str = "header", origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    """The user socket, ``/ws/``: one per device for all of the user's rooms."""
    if via not in ("header", "query"):
        raise ValueError(via)
    headers = {"Authorization": f"Bearer {token}"} if token is not None and via == "header" else {}
    url = server.user_ws_url(token=token if via == "query" else None)
    async with connect(
        url,
        additional_headers=headers,
        origin=Origin(origin) if origin is not None else None,
        proxy=None,
        open_timeout=10,
        close_timeout=5,
    ) as socket:
        yield socket


async def receive(socket: ClientConnection) -> dict[str, Any]:
    """The next frame, decoded; fails if none arrives within ``RECEIVE_TIMEOUT``."""
    try:
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            text = await socket.recv()
    except TimeoutError:
        raise AssertionError(f"no frame within {RECEIVE_TIMEOUT} s") from None
    assert isinstance(text, str), f"expected a text frame, got {text!r}"
    frame = json.loads(text)
    assert isinstance(frame, dict), frame
    assert isinstance(frame.get("type"), str), frame
    return frame


async def send(socket: ClientConnection, frame: dict[str, Any]) -> None:
    await socket.send(json.dumps(frame))


async def close_frame(socket: ClientConnection, within: float = RECEIVE_TIMEOUT) -> tuple[int, str]:
    """Reads (and drops) frames until the server closes the socket; the code and reason
    of the close frame it sent.

    websockets raises ``ConnectionClosed``, whose ``rcvd`` is the server's close frame.
    """
    frames = []
    try:
        async with asyncio.timeout(within):
            while True:
                frames.append(await socket.recv())
    except ConnectionClosed as closed:
        received = closed.rcvd
    except TimeoutError:
        raise AssertionError(f"still open after {within} s; frames: {frames[-5:]}") from None
    if received is None:
        raise AssertionError(f"closed without a close frame; frames before: {frames[-5:]}")
    return received.code, received.reason


async def close_code(socket: ClientConnection) -> int:
    """Reads until the server closes the socket; returns the close code it sent."""
    code, _ = await close_frame(socket)
    return code


async def assert_nothing_pending(socket: ClientConnection, settle: float = 0.2) -> None:
    """After a short wait, a ping's pong is the very next frame: nothing was queued.

    An event the server put on the channel layer before the wait reaches the consumer,
    and so the socket, before the ping does.
    """
    await asyncio.sleep(settle)
    await send(socket, {"type": "ping"})
    frame = await receive(socket)
    assert frame == {"type": "pong"}, f"expected the pong, got {frame}"
