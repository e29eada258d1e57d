"""The embedded channel layer sweeps expired entries, but not on every message."""

import asyncio
from unittest import mock

from channels.layers import InMemoryChannelLayer

from config import layers
from config.layers import SweepingInMemoryChannelLayer


async def test_a_burst_of_broadcasts_sweeps_the_groups_once() -> None:
    layer = SweepingInMemoryChannelLayer(capacity=1000)
    channel = await layer.new_channel()
    for n in range(500):
        await layer.group_add(f"user.{n}", channel)

    with mock.patch.object(InMemoryChannelLayer, "_clean_expired", autospec=True) as sweep:
        for n in range(100):
            await layer.group_send("user.1", {"type": "x", "n": n})

    assert sweep.call_count == 1
    assert [(await layer.receive(channel))["n"] for _ in range(100)] == list(range(100))


async def test_expired_messages_and_memberships_are_still_swept(monkeypatch) -> None:
    monkeypatch.setattr(layers, "SWEEP_INTERVAL", 0.0)
    layer = SweepingInMemoryChannelLayer(expiry=0.05)
    gone, live = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room.1", gone)
    await layer.group_add("room.1", live)
    await layer.send(gone, {"type": "never read"})
    await asyncio.sleep(0.1)

    await layer.group_send("room.1", {"type": "hello"})

    # The unread message expired: its channel left the group, which now reaches the
    # live channel only.
    assert list(layer.groups["room.1"]) == [live]
    assert (await layer.receive(live))["type"] == "hello"
    assert gone not in layer.channels
