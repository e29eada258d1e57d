"""Group commit for the WebSocket path.

Sends from every socket of this process that arrive while a batch is being stored
wait for the next batch, which is stored in one transaction (``message_create_many``)
with one thread hop and a few queries whatever its size. A lone send goes out at once:
batching adds no delay, it only forms under load. Each sender is answered only after
the commit of its batch; the batch's messages are then broadcast from the event loop,
one channel-layer event per room, while the next batch is being stored.
"""

import asyncio
import weakref
from typing import Any

from channels.db import database_sync_to_async

from messaging import events
from messaging.services import MessageDraft
from messaging.sockets import Broadcasts, socket_send_messages

MAX_BATCH = 200


class MessageWriter:
    """Queues drafts from this loop's sockets and stores them in batches."""

    def __init__(self) -> None:
        self.queue: list[tuple[MessageDraft, asyncio.Future[dict[str, Any]]]] = []
        self.draining: asyncio.Task[None] | None = None
        # The broadcast of the last batch stored; each waits for the one before.
        self.publishing: asyncio.Task[None] | None = None

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
                # The broadcast goes out while the next batch is stored, after the
                # previous batch's (so this process publishes each room's messages in
                # seq order); at most one batch's broadcast waits behind another.
                previous = self.publishing
                self.publishing = asyncio.create_task(self._publish(previous, broadcasts))
                if previous is not None:
                    await asyncio.shield(previous)
        finally:
            self.draining = None

    @staticmethod
    async def _publish(previous: "asyncio.Task[None] | None", broadcasts: Broadcasts) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        await events.send_events(broadcasts)


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MessageWriter] = (
    weakref.WeakKeyDictionary()
)


def get_writer() -> MessageWriter:
    """The writer of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = MessageWriter()
    return writer
