"""Who is online in a room, shared by every server process.

Each open socket is an entry ``(user_id, channel_name)`` with an expiry that its
consumer refreshes while it lives, so a process that dies without closing its sockets
stops counting once their entries expire. With ``REDIS_URL`` the entries live in Redis
(one sorted set per room, scored by expiry), which every process sees; without it, in
this process's memory, which is all the in-memory channel layer can serve anyway.

``join`` and ``leave`` say whether the socket was the user's first or last one in the
room, which is when the room hears a ``presence`` event. ``join`` also counts the user's
open sockets in every room (a second set per user, kept in the same call), which the
per-user socket limit reads (``CHAT_MAX_SOCKETS_PER_USER``).
"""

import asyncio
import functools
import time
import weakref
from typing import Any, NamedTuple, Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

POOL_SIZE = 50  # Redis connections per process for presence
POOL_WAIT = 10.0  # seconds a call waits for a free one


def refresh_interval() -> float:
    """Seconds between refreshes of a live socket's entry (``CHAT_REFRESH_SECONDS``)."""
    return float(settings.CHAT_REFRESH_SECONDS)


def entry_ttl() -> float:
    """Seconds an entry lives without a refresh: three missed refreshes."""
    return 3 * refresh_interval()


class Joined(NamedTuple):
    first: bool  # the user's first socket in the room
    user_sockets: int  # the user's open sockets, this one included, in every room


class PresenceStore(Protocol):
    async def join(self, room_id: int, user_id: int, channel: str) -> Joined: ...
    async def leave(self, room_id: int, user_id: int, channel: str) -> bool: ...
    async def refresh(self, room_id: int, user_id: int, channel: str) -> None: ...
    async def online(self, room_id: int) -> list[int]: ...


def _member(user_id: int, channel: str) -> str:
    return f"{user_id}|{channel}"


def _user_ids(members: list[str]) -> list[int]:
    return sorted({int(member.split("|", 1)[0]) for member in members})


class MemoryPresenceStore:
    """One process's view; right for the in-memory channel layer."""

    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, float]] = {}
        self._users: dict[int, dict[str, float]] = {}

    @staticmethod
    def _live_in(table: dict[int, dict[str, float]], key: int) -> dict[str, float]:
        now = time.monotonic()
        entries = table.setdefault(key, {})
        for member in [m for m, expiry in entries.items() if expiry <= now]:
            del entries[member]
        return entries

    def _live(self, room_id: int) -> dict[str, float]:
        return self._live_in(self._rooms, room_id)

    async def join(self, room_id: int, user_id: int, channel: str) -> Joined:
        entries = self._live(room_id)
        expiry = time.monotonic() + entry_ttl()
        entries[_member(user_id, channel)] = expiry
        sockets = self._live_in(self._users, user_id)
        sockets[_member(room_id, channel)] = expiry
        return Joined(first=self._count(entries, user_id) == 1, user_sockets=len(sockets))

    async def leave(self, room_id: int, user_id: int, channel: str) -> bool:
        entries = self._live(room_id)
        entries.pop(_member(user_id, channel), None)
        if not entries:
            self._rooms.pop(room_id, None)
        sockets = self._live_in(self._users, user_id)
        sockets.pop(_member(room_id, channel), None)
        if not sockets:
            self._users.pop(user_id, None)
        return self._count(entries, user_id) == 0

    async def refresh(self, room_id: int, user_id: int, channel: str) -> None:
        expiry = time.monotonic() + entry_ttl()
        self._live(room_id)[_member(user_id, channel)] = expiry
        self._live_in(self._users, user_id)[_member(room_id, channel)] = expiry

    async def online(self, room_id: int) -> list[int]:
        return _user_ids(list(self._live(room_id)))

    @staticmethod
    def _count(entries: dict[str, float], user_id: int) -> int:
        prefix = f"{user_id}|"
        return sum(1 for member in entries if member.startswith(prefix))


class RedisPresenceStore:
    """Shared by every process; each call is one MULTI, so first/last is decided atomically."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        # redis.asyncio connections belong to the event loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # A blocking pool: when every connection is busy (hundreds of sockets
            # opening or closing at once) a call waits for one instead of failing with
            # MaxConnectionsError, as redis-py 8's default pool does past 100.
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=POOL_SIZE,
                timeout=POOL_WAIT,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=5,
                # A connection that died with Redis is replaced, not failed on once.
                retry=Retry(NoBackoff(), 1),
            )
            client = aioredis.Redis(connection_pool=pool)
            self._clients[loop] = client
        return client

    def _key(self, room_id: int) -> str:
        return f"{self._prefix}:presence:{room_id}"

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}:sockets:{user_id}"

    async def _apply(
        self,
        room_id: int,
        *,
        add: str | None,
        remove: str | None,
        user: tuple[int, str] | None = None,
    ) -> tuple[list[str], int]:
        """Applies the change to the room's set (and the user's, with ``user``); the
        room's live members and the user's live socket count, in one MULTI."""
        key = self._key(room_id)
        now = time.time()
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            if add is not None:
                pipe.zadd(key, {add: now + entry_ttl()})
            if remove is not None:
                pipe.zrem(key, remove)
            pipe.zrange(key, 0, -1)
            pipe.expire(key, int(entry_ttl()) + 10)
            if user is not None:
                user_key, socket = self._user_key(user[0]), user[1]
                pipe.zremrangebyscore(user_key, "-inf", now)
                if remove is None:
                    pipe.zadd(user_key, {socket: now + entry_ttl()})
                else:
                    pipe.zrem(user_key, socket)
                pipe.expire(user_key, int(entry_ttl()) + 10)
                pipe.zcard(user_key)
            results = await pipe.execute()
        if user is None:
            return results[-2], 0
        return results[-6], int(results[-1])

    async def join(self, room_id: int, user_id: int, channel: str) -> Joined:
        members, sockets = await self._apply(
            room_id, add=_member(user_id, channel), remove=None, user=(user_id, channel)
        )
        first = sum(1 for m in members if m.startswith(f"{user_id}|")) == 1
        return Joined(first=first, user_sockets=sockets)

    async def leave(self, room_id: int, user_id: int, channel: str) -> bool:
        members, _ = await self._apply(
            room_id, add=None, remove=_member(user_id, channel), user=(user_id, channel)
        )
        return not any(m.startswith(f"{user_id}|") for m in members)

    async def refresh(self, room_id: int, user_id: int, channel: str) -> None:
        await self._apply(
            room_id, add=_member(user_id, channel), remove=None, user=(user_id, channel)
        )

    async def online(self, room_id: int) -> list[int]:
        members, _ = await self._apply(room_id, add=None, remove=None)
        return _user_ids(members)


@functools.cache
def get_presence_store() -> PresenceStore:
    if settings.REDIS_URL:
        layers: Any = settings.CHANNEL_LAYERS
        prefix = layers["default"]["CONFIG"].get("prefix", "asgi")
        return RedisPresenceStore(settings.REDIS_URL, prefix)
    return MemoryPresenceStore()
