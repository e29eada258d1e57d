"""The one way anything reaches sockets: events published to channel-layer groups.

Every app builds its own events (a ``TypedDict`` each, with the frame already encoded
where sockets send it verbatim, so a broadcast is serialized once, not once per socket)
and publishes them here:

- ``publish_on_commit`` from a service's transaction, so that clients never hear of a
  change that was rolled back (Zulip's ``send_event_on_commit`` is the model);
- ``publish`` from the event loop, for what is never stored (typing, presence);
- a ``Publisher`` for the WebSocket writer, which publishes its committed batches off
  the store path, in a bounded queue.

``_send_to_group`` is the single seam to the layer (tests capture events there: the
``capture_events`` fixture). Publishing a committed change never raises (a failure is
logged): the change is stored either way, and a client that misses an event sees a gap
in ``rev`` (or reconnects) and catches up from the database (API.md, Guarantees). Only
``publish``, for what is never stored, lets its caller see the failure.
"""

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

Event = Mapping[str, Any]
# (group, event): what a change publishes, in order.
Sends = Sequence[tuple[str, Event]]


async def _send_to_group(group: str, event: Event) -> None:
    layer = get_channel_layer()
    assert layer is not None
    # The group travels with the event: each process's hub reads one channel for all
    # of its groups and hands the event to the sockets of this one (realtime.hub).
    # A hung Redis answers nothing until its socket timeout (30 s): give up sooner,
    # so that nothing waiting on a send (a REST request, a socket's frame) waits long.
    # A timeout context, not wait_for: no task per send on the busiest path.
    async with asyncio.timeout(settings.CHAT_PUBLISH_TIMEOUT_SECONDS):
        await layer.group_send(group, {**event, "group": group})


async def publish(group: str, event: Event) -> None:
    """Sends one event now; raises if the layer fails (the caller decides what that costs)."""
    await _send_to_group(group, event)


async def publish_many(sends: Sends) -> None:
    """Sends ``(group, event)`` pairs, for changes that are already committed.

    Each group's events leave in order; different groups' go out concurrently (a batch
    of sends in fifty rooms is fifty channel-layer round trips, not one after another).
    Never raises: a failure is logged.
    """
    by_group: dict[str, list[Event]] = {}
    for group, event in sends:
        by_group.setdefault(group, []).append(event)

    async def send_in_order(group: str, group_events: list[Event]) -> None:
        for event in group_events:
            await _send_to_group(group, event)

    results = await asyncio.gather(
        *(send_in_order(group, group_events) for group, group_events in by_group.items()),
        return_exceptions=True,
    )
    for group, result in zip(by_group, results, strict=True):
        if isinstance(result, Exception):
            logger.error(
                "channel layer send failed for %s",
                [event["type"] for event in by_group[group]],
                exc_info=result,
            )


def publish_sync(sends: Sends) -> None:
    """``publish_many`` from synchronous code that runs after the commit: one hop to the
    loop. The caller (a REST request) waits for it, so at most
    ``CHAT_PUBLISH_TIMEOUT_SECONDS`` per event of a group when the layer hangs."""
    if sends:
        async_to_sync(publish_many)(list(sends))


def publish_on_commit(group: str, event: Event) -> None:
    """Publishes ``event`` to ``group`` once the current transaction commits (at once
    outside one); nothing if it rolls back."""
    publish_many_on_commit([(group, event)])


def publish_many_on_commit(sends: Sends) -> None:
    transaction.on_commit(functools.partial(publish_sync, list(sends)), robust=True)


# Events waiting in a Publisher, at most. Past it the oldest are dropped: their changes
# are stored, and sockets fill the gap from the database when the next event shows it.
PUBLISH_QUEUE_LIMIT = 1000
# The most frames one coalesced event carries.
MAX_FRAMES = 200


class Publisher:
    """Publishes committed events in order, off the store path, in a bounded queue.

    One task drains the queue: everything waiting goes out together, each group's events
    in order and groups concurrently (``publish_many``), so this process publishes each
    room's changes in commit order. Each send gives up after
    ``CHAT_PUBLISH_TIMEOUT_SECONDS``, so a hung layer holds the queue, not the senders.

    Events of the type ``coalesce`` carry a list of ``frames``: after a slow spell the
    queue holds many small ones per group, and each is one channel-layer round trip (the
    backlog would only grow), so consecutive ones of a group are merged.
    """

    def __init__(self, *, coalesce: str, limit: int = PUBLISH_QUEUE_LIMIT) -> None:
        self.coalesce = coalesce
        self.limit = limit
        self.queue: deque[tuple[str, Event]] = deque()
        self.task: asyncio.Task[None] | None = None

    def publish(self, sends: Sends) -> None:
        self.queue.extend(sends)
        overflow = len(self.queue) - self.limit
        if overflow > 0:
            for _ in range(overflow):
                self.queue.popleft()
            logger.warning(
                "publish queue full (%d): dropped the %d oldest events", self.limit, overflow
            )
        if self.queue and self.task is None:
            self.task = asyncio.create_task(self._drain(), name="publisher")

    async def _drain(self) -> None:
        try:
            while self.queue:
                sends = self.coalesced(list(self.queue))
                self.queue.clear()
                await publish_many(sends)
        finally:
            self.task = None

    def coalesced(self, sends: Sends) -> list[tuple[str, Event]]:
        """The backlog with each group's consecutive ``coalesce`` events merged. Frames
        keep their order, and an event of another type between two keeps its place."""
        merged: list[tuple[str, Event]] = []
        open_events: dict[str, dict[str, Any]] = {}  # each group's last mergeable one, ours
        for group, event in sends:
            if event["type"] != self.coalesce:
                open_events.pop(group, None)
                merged.append((group, event))
                continue
            last = open_events.get(group)
            if last is not None and len(last["frames"]) + len(event["frames"]) <= MAX_FRAMES:
                last["frames"].extend(event["frames"])
                continue
            copy = open_events[group] = {**event, "frames": list(event["frames"])}
            merged.append((group, copy))
        return merged
