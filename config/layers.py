"""The embedded channel layer: Channels' in-memory layer, with its expiry sweep rationed.

``InMemoryChannelLayer`` sweeps every channel and every group membership for expired
entries on each ``receive`` and ``group_send``: work that grows with the number of
groups, which here is one per connected user (``user.<id>``) plus one per room. With
thousands of sockets open, each broadcast paid for a walk over all of them. This layer
sweeps at most once per ``SWEEP_INTERVAL``; entries still expire, up to that much later.
"""

import time

from channels.layers import InMemoryChannelLayer

SWEEP_INTERVAL = 1.0  # seconds


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_INTERVAL
        super()._clean_expired()
