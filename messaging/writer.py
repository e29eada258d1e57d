"""Group commit for the WebSocket path.

Sends from every socket of this process that arrive while a batch is being stored
wait for the next batch, which is stored in one transaction (``message_create_many``)
with one thread hop and a few queries whatever its size. A lone send goes out at once:
batching adds no delay, it only forms under load. Each sender is answered only after
the commit of its batch; the batch's messages are then handed to the process's
``Publisher``, one channel-layer event per room, and the next batch is stored at once:
storing and acknowledging never wait for the channel layer.
"""

import asyncio
import logging
from collections import deque
from typing import Any

from channels.db import database_sync_to_async

from messaging import events
from messaging.loops import PerLoop
from messaging.services import MessageDraft
from messaging.sockets import Broadcasts, socket_send_messages

logger = logging.getLogger(__name__)

MAX_BATCH = 200
# Broadcasts (channel-layer events) waiting to be published, at most. Past it the
# oldest are dropped: their messages are stored, and sockets fill the gap from the
# database when the next broadcast shows it (API.md, Guarantees).
PUBLISH_QUEUE_LIMIT = 1000


class Publisher:
    """Publishes stored batches' broadcasts in order, off the store path, in a bounded queue.

    One task drains the queue: everything waiting goes out together, each room's events
    in order and rooms concurrently (``events.send_events``), so this process publishes
    each room's messages in ``seq`` order. Each send gives up after
    ``CHAT_PUBLISH_TIMEOUT_SECONDS``, so a hung layer holds the queue, not the senders.
    """

    def __init__(self, limit: int = PUBLISH_QUEUE_LIMIT) -> None:
        self.limit = limit
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.task: asyncio.Task[None] | None = None

    def publish(self, broadcasts: Broadcasts) -> None:
        self.queue.extend(broadcasts)
        overflow = len(self.queue) - self.limit
        if overflow > 0:
            for _ in range(overflow):
                self.queue.popleft()
            logger.warning(
                "publish queue full (%d): dropped the %d oldest broadcasts", self.limit, overflow
            )
        if self.queue and self.task is None:
            self.task = asyncio.create_task(self._drain(), name="publisher")

    async def _drain(self) -> None:
        try:
            while self.queue:
                sends = _coalesced(list(self.queue))
                self.queue.clear()
                await events.send_events(sends)
        finally:
            self.task = None


def _coalesced(sends: Broadcasts) -> Broadcasts:
    """A backlog's ``message.new`` events of one room in as few events as possible.

    After a slow spell the queue holds many small events per room, and each is one
    channel-layer round trip: the backlog would only grow. Frames keep their order, and
    an event of another type between two keeps its place.
    """
    merged: Broadcasts = []
    open_events: dict[str, dict[str, Any]] = {}  # each room's last message.new, ours
    for group, event in sends:
        if event["type"] != "message.new":
            open_events.pop(group, None)
            merged.append((group, event))
            continue
        last = open_events.get(group)
        if last is not None and len(last["frames"]) + len(event["frames"]) <= MAX_BATCH:
            last["frames"].extend(event["frames"])
            continue
        event = open_events[group] = {**event, "frames": list(event["frames"])}
        merged.append((group, event))
    return merged


class MessageWriter:
    """Queues drafts from this loop's sockets and stores them in batches."""

    def __init__(self) -> None:
        self.queue: list[tuple[MessageDraft, asyncio.Future[dict[str, Any]]]] = []
        self.draining: asyncio.Task[None] | None = None
        self.publisher = Publisher()

    async def submit(self, draft: MessageDraft) -> dict[str, Any]:
        """Stores ``draft``; the message as serialized, or the exception that refused it."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.queue.append((draft, future))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                broadcasts: Broadcasts = []
                try:
                    outcomes, broadcasts = await database_sync_to_async(socket_send_messages)(
                        [draft for draft, _ in batch]
                    )
                except Exception as error:  # the database is unreachable, say
                    outcomes = [error] * len(batch)
                # Committed: the senders get their acks.
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its socket went away meanwhile
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                self.publisher.publish(broadcasts)
                # Let the acks go out, and the sends that came meanwhile queue up,
                # before the next batch is formed: batches stay as large as the load
                # makes them (bench fanout: 95 -> 61 us server CPU per delivery).
                await asyncio.sleep(0)
        finally:
            self.draining = None


_writers = PerLoop(MessageWriter)


def get_writer() -> MessageWriter:
    """The writer of the running event loop (one per server process)."""
    return _writers.get()
