"""Per-process fan-out: one channel-layer subscription per group per process.

Channels' usual pattern gives every socket its own channel and adds it to the room's
group, so a broadcast into a room of N sockets is N channel-layer messages, N copies
and N wake-ups. Here each server process (each event loop) has one channel, the
``Hub``'s: it joins a group when the first local socket needs it and leaves when the
last one is gone, reads every event once and hands it to the local sockets by a plain
method call, in the order it arrived. The groups and the events on the layer stay as
they were, so processes still reach each other through Redis.

The hub also keeps its subscriptions alive: every ``CHAT_REFRESH_SECONDS`` it re-joins its
groups (a Redis restarted without persistence has forgotten them) and refreshes the
presence entries of its sockets. Around that it lets each kind of socket re-check all of
its sockets at once (a class method of the consumer, one database query for all of them,
never in the delivery loop): before re-joining, ``recheck_sockets``, that their users may
still be in their rooms (a removal whose event was lost must not leave a socket
listening); after, ``catch_up_sockets``, that they hold their rooms' newest changes (those
published while the groups were forgotten reached nobody, and in a quiet room no later
event reveals the gap). The hub itself knows nothing of rooms or users.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from channels.layers import get_channel_layer

from realtime.loops import PerLoop
from realtime.presence import refresh_interval

logger = logging.getLogger(__name__)

STOP = "hub.stop"


class Listener(Protocol):
    """A local socket: what the hub needs of a consumer."""

    async def deliver(self, event: Mapping[str, Any]) -> None: ...

    async def refresh_presence(self) -> None: ...

    @classmethod
    async def recheck_sockets(cls, sockets: list[Any]) -> None:
        """Closes those of ``sockets`` (all of this class) that may no longer listen."""

    @classmethod
    async def catch_up_sockets(cls, sockets: list[Any]) -> None:
        """Brings ``sockets`` (all of this class) up to their streams' newest changes."""


class Hub:
    """The one subscriber to the channel layer in this process's event loop."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        assert self.layer is not None, "a channel layer must be configured"
        self.channel: str | None = None
        self.groups: dict[str, set[Listener]] = {}
        # group_add and group_discard of one group must not overtake each other.
        self.membership_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    async def _start(self) -> str:
        if self.channel is None:
            # A prefix of its own: channels-redis keeps a lock per prefix, bound to the
            # event loop that first used it.
            self.channel = await self.layer.new_channel(f"hub.{uuid.uuid4().hex[:12]}.")
            self.tasks = [
                asyncio.create_task(self._read(), name="hub-reader"),
                asyncio.create_task(self._maintain(), name="hub-maintenance"),
            ]
        return self.channel

    async def subscribe(self, group: str, listener: Listener) -> None:
        channel = await self._start()
        listeners = self.groups.get(group)
        if listeners is None:
            listeners = self.groups[group] = set()
            async with self.membership_lock:
                await self.layer.group_add(group, channel)
        listeners.add(listener)

    def unsubscribe(self, group: str, listener: Listener) -> None:
        """Stops delivering to ``listener``; empty groups are left by the maintenance task."""
        listeners = self.groups.get(group)
        if listeners is not None:
            listeners.discard(listener)

    async def close(self, *, leave_groups: bool = True) -> None:
        """Stops reading and, unless told not to, leaves every group."""
        if self.channel is not None:
            # Stop the reader with a message rather than a cancel: cancelling a blocking
            # read can leave its Redis connection mid-reply for the next user.
            await self.layer.send(self.channel, {"type": STOP})
        for task in self.tasks:
            if task.get_name() != "hub-reader":
                task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        if self.channel is not None and leave_groups:
            async with self.membership_lock:
                for group in list(self.groups):
                    await self.layer.group_discard(group, self.channel)
        self.groups.clear()
        self.channel = None

    async def _read(self) -> None:
        assert self.channel is not None
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub could not read from the channel layer; retrying")
                await asyncio.sleep(1.0)
                continue
            if event.get("type") == STOP:
                return
            for listener in list(self.groups.get(event.get("group", ""), ())):
                try:
                    await listener.deliver(event)
                except Exception as error:
                    # Usually a socket whose client has just gone: its transport is
                    # closed and its disconnect not yet handled. The others still get it.
                    logger.warning("delivering %s to a socket failed: %r", event.get("type"), error)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(refresh_interval())
            try:
                await self.maintain()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub maintenance failed; retrying later", exc_info=True)

    async def maintain(self) -> None:
        """Re-check the sockets' access, leave empty groups and re-join the others, catch
        the sockets up, refresh their presence."""
        assert self.channel is not None
        # Before re-joining, and whether or not the layer answers: a socket whose user
        # was removed while the layer was away must not hear the room again, not once.
        await self.recheck_access()
        async with self.membership_lock:
            for group, listeners in list(self.groups.items()):
                if listeners:
                    await self.layer.group_add(group, self.channel)
                else:
                    del self.groups[group]
                    await self.layer.group_discard(group, self.channel)
        # After re-joining: what was committed before it is read from the database,
        # what is committed after it arrives by broadcast.
        await self.catch_up()
        for listener in self._listeners():
            await listener.refresh_presence()

    def _listeners(self) -> list[Listener]:
        """Every local socket once (one is in its room's group and its user's)."""
        seen: dict[int, Listener] = {}
        for listeners in list(self.groups.values()):
            for listener in list(listeners):
                seen.setdefault(id(listener), listener)
        return list(seen.values())

    def _by_kind(self) -> dict[type[Listener], list[Listener]]:
        kinds: dict[type[Listener], list[Listener]] = {}
        for listener in self._listeners():
            kinds.setdefault(type(listener), []).append(listener)
        return kinds

    @staticmethod
    async def _guarded(step: Awaitable[None], what: str) -> None:
        try:
            await step
        except Exception:  # the database is unreachable, say: the rest still runs
            logger.warning("hub could not %s; retrying later", what, exc_info=True)

    async def recheck_access(self) -> None:
        """Each kind of socket re-checks all of its sockets (one query a kind)."""
        for kind, listeners in self._by_kind().items():
            await self._guarded(kind.recheck_sockets(listeners), "re-check the sockets' access")

    async def catch_up(self) -> None:
        """Each kind of socket brings its sockets up to date (one query a kind)."""
        for kind, listeners in self._by_kind().items():
            await self._guarded(kind.catch_up_sockets(listeners), "catch the sockets up")


_hubs = PerLoop(Hub)


def get_hub() -> Hub:
    """The hub of the running event loop (one per server process)."""
    return _hubs.get()


async def close_hub(*, leave_groups: bool = True) -> None:
    """Closes the running loop's hub, if it has one."""
    hub = _hubs.pop()
    if hub is not None:
        await hub.close(leave_groups=leave_groups)
