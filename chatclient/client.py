"""A client for scripts: the chat's public contract (API.md) and nothing else.

HTTP goes through the standard library; live rooms through the ``websockets`` package.
Every call first makes sure the access token does not expire within
``REFRESH_MARGIN`` seconds, and a 401 earns one refresh and one retry. Refresh tokens
rotate, so the new pair is saved at once (see ``chatclient.tokens``).
"""

import asyncio
import contextlib
import json
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chatclient.tokens import Tokens, TokenStore, expires_within, token_claims

DEFAULT_SERVER = "http://127.0.0.1:8000"
REFRESH_MARGIN = 30.0  # seconds of life an access token must have left to be used
PAGE_LIMIT = 100  # the largest page the server gives
# Socket frames that tail() passes on as they come; message.new is handled apart.
PASSED_ON = frozenset(
    {"message.updated", "message.deleted", "typing", "presence", "room.updated", "room.deleted"}
)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class ChatError(Exception):
    """Anything the chat client reports to its caller."""


class ApiError(ChatError):
    """The server answered with an error status."""

    def __init__(self, status: int, data: Any) -> None:
        self.status = status
        self.data = data
        super().__init__(f"{_describe(data) or 'error'} (HTTP {status})")


class AuthError(ChatError):
    """Not logged in, or the session has ended: log in again."""


class RoomClosed(ChatError):
    """The server closed the room's socket for good (4403 not a member, 4404 no room)."""

    def __init__(self, code: int) -> None:
        self.code = code
        reason = (
            "not a member of this room: join it first"
            if code == CLOSE_FORBIDDEN
            else "no such room"
        )
        super().__init__(f"{reason} (WebSocket close code {code})")


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
        return "; ".join(
            f"{field}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
            for field, errors in data.items()
        )
    return str(data) if data else ""


def _issued_after(stored: Tokens, ours: Tokens) -> bool:
    """Whether the stored pair is another, later one than ours (a rotation elsewhere)."""
    if stored.refresh == ours.refresh:
        return False
    issued = [token_claims(tokens.refresh).get("iat", 0) for tokens in (stored, ours)]
    return bool(issued[0] >= issued[1])  # iat counts seconds: the same second may be newer


class ChatClient:
    """One user's session with one server.

    ``store`` (a ``TokenStore``) keeps the tokens across runs; without one they live
    only in this object. Blocking methods do HTTP; ``tail`` is an async iterator.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        store: TokenStore | None = None,
        tokens: Tokens | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ChatError(f"the server must be an http:// or https:// URL, not {server!r}")
        self.server = server.rstrip("/")
        self.store = store
        self.timeout = timeout
        self.tokens = tokens if tokens is not None else (store.load(self.server) if store else None)
        self._refresh_lock = threading.Lock()

    # HTTP --------------------------------------------------------------------------

    def _call(self, method: str, url: str, body: Any, token: str | None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s) only)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, raw = error.code, error.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = {"detail": raw[:200].decode(errors="replace")}
        return status, payload

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        """One call; ``path`` is relative to the server (``/api/v1/...``) or a ``next`` URL."""
        url = urljoin(self.server + "/", path)
        if not auth:
            status, data = self._call(method, url, body, None)
        else:
            status, data = self._call(method, url, body, self.access_token())
            if status == 401:
                self.refresh()  # the token died early (a restart with a new key, say)
                status, data = self._call(method, url, body, self.access_token())
                if status == 401:
                    raise AuthError(f"the server refused the session: {_describe(data)}")
        if status >= 400:
            raise ApiError(status, data)
        return data

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        while url:
            page = self.request("GET", url)
            yield from page["results"]
            url = page["next"]

    # Tokens ------------------------------------------------------------------------

    def _use(self, tokens: Tokens) -> None:
        self.tokens = tokens
        if self.store is not None:
            self.store.save(self.server, tokens)

    def access_token(self) -> str:
        """An access token with at least ``REFRESH_MARGIN`` seconds left, refreshing first."""
        if self.tokens is None:
            raise AuthError("not logged in: run `python -m chatclient login USERNAME`")
        if expires_within(self.tokens.access, REFRESH_MARGIN):
            self.refresh()
        assert self.tokens is not None
        return self.tokens.access

    def refresh(self) -> None:
        """Trades the refresh token for a new pair (the old one is blacklisted) and saves it."""
        with self._refresh_lock, self._store_lock():
            if self.tokens is None:
                raise AuthError("not logged in: run `python -m chatclient login USERNAME`")
            stored = self.store.load(self.server) if self.store else None
            if stored is not None and _issued_after(stored, self.tokens):
                # Another process rotated the pair already, and ours is dead.
                self.tokens = stored
                if not expires_within(stored.access, REFRESH_MARGIN):
                    return
            status, data = self._call(
                "POST",
                f"{self.server}/api/v1/auth/token/refresh/",
                {"refresh": self.tokens.refresh},
                None,
            )
            if status in (400, 401):
                self._use_nothing()
                raise AuthError("the session has ended: log in again")
            if status >= 400:
                raise ApiError(status, data)
            self._use(Tokens(data["access"], data["refresh"], self.tokens.username))

    def _store_lock(self) -> contextlib.AbstractContextManager[None]:
        return self.store.locked() if self.store else contextlib.nullcontext()

    def _use_nothing(self) -> None:
        self.tokens = None
        if self.store is not None:
            self.store.save(self.server, None)

    # Accounts ----------------------------------------------------------------------

    def register(
        self, username: str, password: str, *, display_name: str | None = None
    ) -> dict[str, Any]:
        """Signs up and logs in; returns the new user."""
        body = {"username": username, "password": password}
        if display_name:
            body["display_name"] = display_name
        data = self.request("POST", "/api/v1/auth/register/", body, auth=False)
        self._use(Tokens(data["access"], data["refresh"], data["user"]["username"]))
        return dict(data["user"])

    def login(self, username: str, password: str) -> None:
        body = {"username": username, "password": password}
        data = self.request("POST", "/api/v1/auth/token/", body, auth=False)
        self._use(Tokens(data["access"], data["refresh"], username))

    def logout(self) -> None:
        """Blacklists the refresh token on the server and forgets the pair."""
        if self.tokens is not None:
            self.request("POST", "/api/v1/auth/logout/", {"refresh": self.tokens.refresh})
        self._use_nothing()

    def me(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/users/me/"))

    # Rooms -------------------------------------------------------------------------

    def rooms(self, *, search: str | None = None, joined: bool = False) -> Iterator[dict[str, Any]]:
        """Rooms the user can see, most recently active first, across all pages."""
        query = {"search": search} if search else {}
        if joined:
            query["joined"] = "true"
        return self._pages(f"/api/v1/rooms/?{urlencode(query)}")

    def room(self, room_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v1/rooms/{room_id}/"))

    def create_room(
        self, name: str, *, topic: str = "", visibility: str = "public"
    ) -> dict[str, Any]:
        body = {"name": name, "topic": topic, "visibility": visibility}
        return dict(self.request("POST", "/api/v1/rooms/", body))

    def join(self, room_id: int) -> dict[str, Any]:
        return dict(self.request("POST", f"/api/v1/rooms/{room_id}/join/"))

    # Messages ----------------------------------------------------------------------

    def send(self, room_id: int, body: str, *, client_id: str | None = None) -> dict[str, Any]:
        """Sends a message; repeating a call with the same ``client_id`` stores it once."""
        data = {"body": body, "client_id": client_id or uuid.uuid4().hex}
        return dict(self.request("POST", f"/api/v1/rooms/{room_id}/messages/", data))

    def edit(self, message_id: int, body: str) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/api/v1/messages/{message_id}/", {"body": body}))

    def delete(self, message_id: int) -> None:
        self.request("DELETE", f"/api/v1/messages/{message_id}/")

    def history(self, room_id: int, *, after: int = 0) -> Iterator[dict[str, Any]]:
        """Messages after ``after`` (0: all of them), oldest first, following ``next``."""
        return self._pages(f"/api/v1/rooms/{room_id}/messages/?after={after}&limit={PAGE_LIMIT}")

    def last_seq(self, room_id: int) -> int:
        """The seq of the room's newest message: how many it has (deleted ones included)."""
        page = self.request("GET", f"/api/v1/rooms/{room_id}/messages/?limit=1")
        return int(page["results"][0]["seq"]) if page["results"] else 0

    # Live --------------------------------------------------------------------------

    def ws_url(self, room_id: int) -> str:
        parts = urlsplit(self.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/ws/rooms/{room_id}/"

    async def tail(
        self,
        room_id: int,
        *,
        after: int | None = None,
        min_delay: float = 0.5,
        max_delay: float = 30.0,
        on_reconnect: Callable[[str, float], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """A room's live events, for as long as the caller iterates.

        Yields the socket's frames: ``message.new`` in ``seq`` order and once per seq,
        including the messages it fetches over HTTP when it sees a gap or reconnects
        (``hello.last_seq`` ahead of the last seq it yielded), and the frames in
        ``PASSED_ON`` as they come. ``after`` starts after that seq (0: the whole
        history first); None starts with what is sent from now on.

        A dropped connection is reopened after an exponential backoff with jitter
        (``min_delay`` doubling up to ``max_delay``); an expired token is refreshed.
        Before each new attempt ``on_reconnect(reason, delay)`` is called, if given,
        with what went wrong and the seconds it waits. Raises ``AuthError`` when the
        session has ended and ``RoomClosed`` when the server closes the socket with
        4403 or 4404.
        """
        last_seq = after
        failures = 0
        token = ""
        while True:
            try:
                token = await asyncio.to_thread(self.access_token)
                async with connect(
                    self.ws_url(room_id),
                    additional_headers={"Authorization": f"Bearer {token}"},
                    open_timeout=10,
                    close_timeout=5,
                ) as socket:
                    while True:
                        frame = json.loads(await socket.recv())
                        kind = frame.get("type")
                        if kind == "hello":
                            failures = 0
                            newest = int(frame["last_seq"])
                            last_seq = newest if last_seq is None else last_seq
                        elif kind == "message.new" and last_seq is not None:
                            newest = int(frame["message"]["seq"])
                            if newest == last_seq + 1:
                                last_seq = newest
                                yield frame
                                continue
                        elif kind in PASSED_ON:
                            yield frame
                            continue
                        else:
                            continue
                        if last_seq is not None and newest > last_seq:
                            # Behind the server (a reconnect, or a gap in seq): fetch
                            # what is missing, oldest first. Older seqs are repeats.
                            async for message in self._after(room_id, last_seq):
                                last_seq = int(message["seq"])
                                yield {"type": "message.new", "message": message}
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                reason = f"connection closed ({code})" if code else "connection lost"
                if code in (CLOSE_FORBIDDEN, CLOSE_NOT_FOUND):
                    raise RoomClosed(code) from None
                if code == CLOSE_UNAUTHORIZED:
                    # The server closes a socket when its token expires, or refuses one.
                    if self.tokens is not None and self.tokens.access == token:
                        await asyncio.to_thread(self.refresh)  # AuthError if that fails
                    if failures == 0:  # the first time since a hello: reconnect at once
                        failures = 1
                        if on_reconnect is not None:
                            on_reconnect("access token refused or expired", 0.0)
                        continue
            except ApiError as error:
                if error.status == 404:
                    raise RoomClosed(CLOSE_NOT_FOUND) from None
                if error.status < 500 and error.status != 429:
                    raise
                reason = f"the server answered {error.status}"
            except (OSError, TimeoutError, InvalidHandshake) as error:
                # The server is down or unreachable: try again later.
                reason = f"cannot connect ({error or type(error).__name__})"
            delay = min(max_delay, min_delay * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311
            failures += 1
            if on_reconnect is not None:
                on_reconnect(reason, delay)
            await asyncio.sleep(delay)

    async def _after(self, room_id: int, after: int) -> AsyncIterator[dict[str, Any]]:
        url: str | None = f"/api/v1/rooms/{room_id}/messages/?after={after}&limit={PAGE_LIMIT}"
        while url:
            page = await asyncio.to_thread(self.request, "GET", url)
            for message in page["results"]:
                yield message
            url = page["next"]
