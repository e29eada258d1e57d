"""Per-socket delivery in ``seq`` order.

Within one process, broadcasts leave in commit order. With several processes they
meet in the channel layer from different publishers and can arrive out of order, and
a layer may drop one under load. Each socket therefore delivers ``message.new`` in
strict ``seq`` order from the ``last_seq`` its ``hello`` announced: duplicates are
dropped, early arrivals wait, and a gap that does not fill by itself is read from the
database (the consumer does that) so the client still sees 1, 2, 3, … with no holes.
A gap that no broadcast reveals (every broadcast after it lost too) is found by the hub,
which tells the orderer the room's newest ``seq`` (``expect``).
"""


class SeqOrderer:
    """Releases items in consecutive ``seq`` order, holding back early ones."""

    def __init__(self, last_seq: int) -> None:
        self.last_seq = last_seq
        self._pending: dict[int, str] = {}
        # The newest seq known to exist (``expect``), whether or not it has arrived.
        self.newest = last_seq

    @property
    def has_gap(self) -> bool:
        return bool(self._pending) or self.newest > self.last_seq

    def expect(self, seq: int) -> None:
        """``seq`` exists: until it has gone out, everything up to it is a gap to fill.

        For a socket whose broadcasts were lost and that no later broadcast will reveal
        (a quiet room after the channel layer failed).
        """
        self.newest = max(self.newest, seq)

    def offer(self, seq: int, item: str) -> list[str]:
        """The items that can go out now, in order (possibly none)."""
        if seq <= self.last_seq or seq in self._pending:
            return []
        self._pending[seq] = item
        ready: list[str] = []
        while self.last_seq + 1 in self._pending:
            self.last_seq += 1
            ready.append(self._pending.pop(self.last_seq))
        return ready
