"""What one socket, one user or one address may take of a server process (API.md, Limits).

All of it in memory, checked before a frame reaches anything that waits: a refused
frame costs no database call and no channel-layer message.

- ``FrameBucket``: each socket's steady rate of frames with bursts
  (``CHAT_FRAME_RATE``, ``CHAT_FRAME_BURST``); a socket that keeps sending after being
  told (``CHAT_FLOOD_CLOSE_FRAMES`` refused frames within ``CHAT_FLOOD_WINDOW_SECONDS``)
  is closed with 4429.
- ``TypingGate``: typing reaches a room at most once a second per user, whatever
  ``is_typing`` says, over all of the user's sockets in this process; the latest word
  held back goes out when the second is over.
- ``SocketCount``: the open sockets per client address in this process
  (``CHAT_MAX_SOCKETS_PER_ADDRESS``). The per-user limit (``CHAT_MAX_SOCKETS_PER_USER``)
  counts over every process, in the presence store.

The transport's own limits (unsent bytes, queued frames) are in ``config.transport``.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from django.conf import settings

from realtime.loops import PerLoop

TYPING_INTERVAL = 1.0


class FrameBucket:
    """One socket's token bucket for inbound frames, and its count of refused ones."""

    __slots__ = ("allowance", "checked_at", "refused", "refused_since")

    def __init__(self) -> None:
        self.allowance = float(settings.CHAT_FRAME_BURST)
        self.checked_at = time.monotonic()
        self.refused = 0
        self.refused_since = 0.0

    def take(self) -> float | None:
        """None when the frame may be handled, else the seconds until one may."""
        now = time.monotonic()
        rate = float(settings.CHAT_FRAME_RATE)
        burst = float(settings.CHAT_FRAME_BURST)
        self.allowance = min(burst, self.allowance + (now - self.checked_at) * rate)
        self.checked_at = now
        if self.allowance >= 1.0:
            self.allowance -= 1.0
            return None
        if now - self.refused_since > settings.CHAT_FLOOD_WINDOW_SECONDS:
            self.refused, self.refused_since = 0, now
        self.refused += 1
        return (1.0 - self.allowance) / rate

    @property
    def flooding(self) -> bool:
        """The socket went on sending after being refused often enough to be closed."""
        return self.refused >= settings.CHAT_FLOOD_CLOSE_FRAMES


class TypingGate:
    """Typing events per user per room, in this process: at most one a second.

    The first goes out at once; what comes within the second is held, and the latest of
    it goes out when the second is over, so the room always ends up with the user's last
    word (a ``false`` right after a ``true`` is late, never lost).
    """

    def __init__(self) -> None:
        self.last: dict[tuple[int, int], float] = {}
        self.held: dict[tuple[int, int], Callable[[], Awaitable[None]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def offer(self, room_id: int, user_id: int, send: Callable[[], Awaitable[None]]) -> bool:
        """Sends now (True), or holds ``send`` until the user's second in the room is over."""
        now = time.monotonic()
        key = (room_id, user_id)
        wait = self.last.get(key, -TYPING_INTERVAL) + TYPING_INTERVAL - now
        if wait <= 0:
            if len(self.last) > 10_000:  # forget the ones that no longer matter
                self.last = {k: t for k, t in self.last.items() if now - t < TYPING_INTERVAL}
            self.last[key] = now
            return True
        if key not in self.held:
            asyncio.get_running_loop().call_later(wait, self._release, key)
        self.held[key] = send
        return False

    def _release(self, key: tuple[int, int]) -> None:
        send = self.held.pop(key, None)
        if send is None:
            return
        self.last[key] = time.monotonic()
        task = asyncio.ensure_future(send())
        self.tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self.tasks.discard)


class SocketCount:
    """Open sockets per client address, in this process."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def add(self, address: str) -> bool:
        """Counts one more socket of ``address``; False (and not counted) past the limit."""
        if self.open[address] >= settings.CHAT_MAX_SOCKETS_PER_ADDRESS:
            return False
        self.open[address] += 1
        return True

    def remove(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class ProcessLimits:
    """The limits a server process keeps for all of its sockets."""

    def __init__(self) -> None:
        self.typing = TypingGate()
        self.addresses = SocketCount()


_limits = PerLoop(ProcessLimits)


def get_process_limits() -> ProcessLimits:
    """Those of the running event loop (one per server process)."""
    return _limits.get()
