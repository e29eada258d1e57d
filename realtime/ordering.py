"""Per-socket delivery of a stream (a room's changes) in strict position order (``rev``).

Within one process, events leave in commit order. With several processes they meet in
the channel layer from different publishers and can arrive out of order, and a layer may
drop one under load. Each socket therefore delivers a room's changes in strict ``rev``
order from the revision its greeting announced: duplicates are dropped, early arrivals
wait, and a gap that does not fill by itself within ``GAP_WAIT`` is read from the
database through the stream's ``fetch`` callback, so the client still sees 1, 2, 3, …
A gap that no event reveals (every event after it lost too) is found by the hub's
catch-up, which tells the stream the room's newest position (``expect``).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A stream's item: a sequence whose first element is its position (``[rev, ...]``).
Item = TypeVar("Item", bound=Sequence[Any])

# How long an early arrival waits for the ones before it before the socket reads the
# missing ones from the database.
GAP_WAIT = 0.5


class Orderer(Generic[T]):
    """Releases items in consecutive position order, holding back early ones."""

    def __init__(self, position: int) -> None:
        self.position = position
        self._pending: dict[int, T] = {}
        # The newest position known to exist (``expect``), whether or not it has arrived.
        self.newest = position

    @property
    def has_gap(self) -> bool:
        return bool(self._pending) or self.newest > self.position

    def expect(self, position: int) -> None:
        """``position`` exists: until it has gone out, everything up to it is a gap."""
        self.newest = max(self.newest, position)

    def offer(self, position: int, item: T, ready: list[T]) -> None:
        """Appends to ``ready`` the items that can go out now, in order (possibly none)."""
        if position <= self.position or position in self._pending:
            return
        if position == self.position + 1 and not self._pending:  # nearly always
            self.position = position
            ready.append(item)
            return
        self._pending[position] = item
        while self.position + 1 in self._pending:
            self.position += 1
            ready.append(self._pending.pop(self.position))

    def skip_to(self, position: int) -> None:
        """Everything up to ``position`` is accounted for (read from the database): what
        is still pending at or before it is dropped, and what follows it is released by
        the next ``offer`` or ``release``."""
        if position > self.position:
            self.position = position
            for stale in [p for p in self._pending if p <= position]:
                del self._pending[stale]

    def release(self, ready: list[T]) -> None:
        while self.position + 1 in self._pending:
            self.position += 1
            ready.append(self._pending.pop(self.position))


# What a stream reads to fill a gap: the items after a position, in order, at most a page.
Fetch = Callable[[int], Awaitable[list[Item]]]
# Sends released items to the client, in order.
Emit = Callable[[list[Item]], Awaitable[None]]


class OrderedStream(Generic[Item]):
    """One socket's view of one stream: orders what arrives, fills gaps through ``fetch``
    and sends what is ready through ``emit``, never two batches at once."""

    def __init__(self, position: int, *, fetch: Fetch[Item], emit: Emit[Item], name: str) -> None:
        self.orderer: Orderer[Item] = Orderer(position)
        self.fetch = fetch
        self.emit = emit
        self.name = name
        self.lock = asyncio.Lock()
        self.gap_task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        return self.orderer.position

    async def offer(self, items: Iterable[Item]) -> None:
        """Items as they arrive from the layer: sends those in order now through
        ``emit``, holds back early ones, and starts filling a gap that this leaves."""
        ready: list[Item] = []
        offer = self.orderer.offer
        for item in items:
            offer(item[0], item, ready)
        if ready:
            async with self.lock:
                await self.emit(ready)
        if self.gap_task is None and self.orderer.has_gap:
            self.gap_task = asyncio.create_task(self._fill_gap(GAP_WAIT))

    def expect(self, position: int) -> None:
        """The stream's newest position is ``position``: fill up to it, now."""
        self.orderer.expect(position)
        if self.orderer.has_gap and self.gap_task is None:
            self.gap_task = asyncio.create_task(self._fill_gap(0.0))

    def close(self) -> None:
        task = self.gap_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _fill_gap(self, wait: float) -> None:
        try:
            if wait:
                await asyncio.sleep(wait)
            while self.orderer.has_gap:
                missing = await self.fetch(self.orderer.position)
                if not missing:
                    # Nothing after it after all (say, the stream's source is gone).
                    self.orderer.newest = self.orderer.position
                    break
                ready: list[Item] = []
                async with self.lock:
                    # Read from the database, so in order and whole up to the last one:
                    # positions superseded since (an edit's older revision) are gone.
                    for item in missing:
                        if item[0] > self.orderer.position:
                            ready.append(item)
                    self.orderer.skip_to(missing[-1][0])
                    self.orderer.release(ready)
                    if ready:
                        await self.emit(ready)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not fill a gap in %s", self.name)
        finally:
            self.gap_task = None
