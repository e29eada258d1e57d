"""A socket's stream of a room's changes goes out in rev order, whatever the layer does."""

import asyncio

from realtime.ordering import OrderedStream, Orderer

Item = tuple[int, str]


def offered(orderer: Orderer[str], *positions: int) -> list[str]:
    ready: list[str] = []
    for position in positions:
        orderer.offer(position, f"r{position}", ready)
    return ready


def test_in_order_items_go_out_at_once_and_duplicates_never() -> None:
    orderer: Orderer[str] = Orderer(3)

    assert offered(orderer, 4, 5, 5, 3, 2) == ["r4", "r5"]
    assert not orderer.has_gap


def test_early_items_wait_for_the_ones_before_them() -> None:
    orderer: Orderer[str] = Orderer(0)

    assert offered(orderer, 2, 4) == []
    assert orderer.has_gap
    assert offered(orderer, 1) == ["r1", "r2"]
    assert offered(orderer, 3) == ["r3", "r4"]
    assert not orderer.has_gap


def test_an_expected_position_is_a_gap_until_it_went_out() -> None:
    orderer: Orderer[str] = Orderer(5)
    orderer.expect(7)

    assert orderer.has_gap
    assert offered(orderer, 6, 7) == ["r6", "r7"]
    assert not orderer.has_gap


class Source:
    """What the database holds: each item at its latest position, superseded ones gone."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.reads: list[int] = []

    async def fetch(self, after: int) -> list[Item]:
        self.reads.append(after)
        return [item for item in self.items if item[0] > after][:2]  # pages of two


async def test_a_gap_that_does_not_fill_by_itself_is_read_through_the_callback() -> None:
    # Position 3 was superseded by 5 (an edit of the same message): the source no longer
    # has it, and the stream must not wait for it forever.
    source = Source([(1, "a"), (2, "b"), (4, "d"), (5, "c-edited"), (6, "e")])
    sent: list[str] = []

    async def emit(items: list[Item]) -> None:
        sent.extend(text for _, text in items)

    stream: OrderedStream[Item] = OrderedStream(1, fetch=source.fetch, emit=emit, name="test")
    await stream.offer([(6, "e")])  # 2..5 lost on the way
    assert sent == []
    assert stream.gap_task is not None
    await stream.gap_task

    assert sent == ["b", "d", "c-edited", "e"]
    assert source.reads == [1, 4]  # page by page, from where each page ended
    assert stream.position == 6
    await stream.offer([(5, "late duplicate"), (7, "f")])
    assert sent[-1:] == ["f"]


async def test_expect_fills_at_once_what_no_event_revealed() -> None:
    source = Source([(1, "a"), (2, "b")])
    sent: list[str] = []

    async def emit(items: list[Item]) -> None:
        sent.extend(text for _, text in items)

    stream: OrderedStream[Item] = OrderedStream(0, fetch=source.fetch, emit=emit, name="test")
    stream.expect(2)
    assert stream.gap_task is not None
    await asyncio.wait_for(stream.gap_task, 0.3)  # no GAP_WAIT: nothing is on its way

    assert sent == ["a", "b"]


async def test_a_failing_fetch_is_logged_and_retried_by_the_next_gap(caplog) -> None:  # type: ignore[no-untyped-def]
    calls = 0

    async def fetch(after: int) -> list[Item]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return [(after + 1, "found")]

    sent: list[str] = []

    async def emit(items: list[Item]) -> None:
        sent.extend(text for _, text in items)

    stream: OrderedStream[Item] = OrderedStream(0, fetch=fetch, emit=emit, name="room 9")
    stream.expect(1)
    assert stream.gap_task is not None
    await stream.gap_task
    assert sent == []
    assert "could not fill a gap in room 9" in caplog.text

    stream.expect(1)
    assert stream.gap_task is not None
    await stream.gap_task
    assert sent == ["found"]
