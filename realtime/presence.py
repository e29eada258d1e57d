"""Who is online, shared by every server process.

A user is online while any socket of theirs is open, a room socket or a user socket, on
any process (API.md: ``presence``). Each open socket is an entry under its user with an
expiry that its consumer refreshes while it lives, so a process that dies without
closing its sockets stops counting once their entries expire. With ``REDIS_URL`` the
entries live in Redis (a sorted set of sockets per user, scored by expiry, and one
sorted set of online users, scored by their newest expiry), which every process sees;
without it, in this process's memory, which is all the in-memory channel layer can
serve anyway.

``connect`` says whether the socket is the user's first, and counts their open sockets
(the per-user socket limit reads it, ``CHAT_MAX_SOCKETS_PER_USER``); ``disconnect``
whether it was their last: when the user's rooms hear a ``presence`` event. Who is
online in a room is its members (the database's to say) that are online here
(``online``).
"""

import asyncio
import functools
import time
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

POOL_SIZE = 50  # Redis connections per process for presence
POOL_WAIT = 10.0  # seconds a call waits for a free one
# ``online`` lists (a room socket's hello, a user socket's watching) hold at most this
# many users (API.md).
ONLINE_LIST_MAX = 200


def refresh_interval() -> float:
    """Seconds between refreshes of a live socket's entry (``CHAT_REFRESH_SECONDS``)."""
    return float(settings.CHAT_REFRESH_SECONDS)


def entry_ttl() -> float:
    """Seconds an entry lives without a refresh: three missed refreshes."""
    return 3 * refresh_interval()


class Connected(NamedTuple):
    first: bool  # the user's first open socket, of any kind, on any process
    user_sockets: int  # the user's open sockets, this one included


class PresenceStore(Protocol):
    async def connect(self, user_id: int, socket: str) -> Connected: ...
    async def disconnect(self, user_id: int, socket: str) -> bool: ...
    async def refresh(self, user_id: int, socket: str) -> None: ...
    async def online(self, user_ids: Iterable[int]) -> list[int]: ...


class MemoryPresenceStore:
    """One process's view; right for the in-memory channel layer."""

    def __init__(self) -> None:
        self._users: dict[int, dict[str, float]] = {}

    def _live(self, user_id: int) -> dict[str, float]:
        now = time.monotonic()
        sockets = self._users.setdefault(user_id, {})
        for socket in [s for s, expiry in sockets.items() if expiry <= now]:
            del sockets[socket]
        return sockets

    async def connect(self, user_id: int, socket: str) -> Connected:
        sockets = self._live(user_id)
        first = not sockets
        sockets[socket] = time.monotonic() + entry_ttl()
        return Connected(first=first, user_sockets=len(sockets))

    async def disconnect(self, user_id: int, socket: str) -> bool:
        sockets = self._live(user_id)
        sockets.pop(socket, None)
        if sockets:
            return False
        self._users.pop(user_id, None)
        return True

    async def refresh(self, user_id: int, socket: str) -> None:
        self._live(user_id)[socket] = time.monotonic() + entry_ttl()

    async def online(self, user_ids: Iterable[int]) -> list[int]:
        return sorted(
            user_id for user_id in set(user_ids) if user_id in self._users and self._live(user_id)
        )


# KEYS: the user's sockets, the online users. ARGV: now, expiry, socket, user id, key ttl.
# Returns the user's live sockets before and after.
_CONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return {before, redis.call('ZCARD', KEYS[1])}
"""
# Same KEYS and ARGV (expiry unused). Returns the user's live sockets left.
_DISCONNECT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[3])
local left = redis.call('ZCARD', KEYS[1])
if left == 0 then redis.call('ZREM', KEYS[2], ARGV[4]) end
return left
"""


class RedisPresenceStore:
    """Shared by every process; each call is one script, so first and last are decided
    atomically across processes."""

    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._online_key = f"{prefix}:online"
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

    async def _run(self, script: str, user_id: int, socket: str) -> Any:
        now = time.time()
        keys = [f"{self._prefix}:sockets:{user_id}", self._online_key]
        args: list[str | int | float] = [
            now,
            now + entry_ttl(),
            socket,
            user_id,
            int(entry_ttl()) + 10,
        ]
        # EVAL with the text: a restarted Redis has no cached scripts to miss.
        return await self._redis().eval(script, len(keys), *keys, *args)

    async def connect(self, user_id: int, socket: str) -> Connected:
        before, after = await self._run(_CONNECT, user_id, socket)
        return Connected(first=int(before) == 0, user_sockets=int(after))

    async def disconnect(self, user_id: int, socket: str) -> bool:
        return int(await self._run(_DISCONNECT, user_id, socket)) == 0

    async def refresh(self, user_id: int, socket: str) -> None:
        await self._run(_CONNECT, user_id, socket)

    async def online(self, user_ids: Iterable[int]) -> list[int]:
        ids = sorted(set(user_ids))
        if not ids:
            return []
        scores = await self._redis().zmscore(self._online_key, [str(i) for i in ids])
        now = time.time()
        pairs = zip(ids, scores, strict=True)
        return [user_id for user_id, score in pairs if score and score > now]


@functools.cache
def get_presence_store() -> PresenceStore:
    if settings.REDIS_URL:
        layers: Any = settings.CHANNEL_LAYERS
        prefix = layers["default"]["CONFIG"].get("prefix", "asgi")
        return RedisPresenceStore(settings.REDIS_URL, prefix)
    return MemoryPresenceStore()
