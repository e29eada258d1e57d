"""Events reach the layer only after their change commits, and a failing layer never
fails the change."""

from unittest import mock

import pytest
from channels.layers import get_channel_layer
from django.db import transaction

from realtime import publish
from tests.conftest import Published

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_event_published_in_a_transaction_leaves_at_commit(capture_events: Published) -> None:
    with transaction.atomic():
        publish.publish_on_commit("room.1", {"type": "room.deleted", "room": 1})
        assert capture_events == []

    assert capture_events == [("room.1", {"type": "room.deleted", "room": 1})]


def test_an_event_of_a_rolled_back_change_never_leaves(capture_events: Published) -> None:
    def change() -> None:
        with transaction.atomic():
            publish.publish_on_commit("room.1", {"type": "room.deleted", "room": 1})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change()

    assert capture_events == []


def test_a_failing_layer_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    layer = get_channel_layer()
    with mock.patch.object(layer, "group_send", side_effect=ConnectionError("layer down")):
        publish.publish_on_commit("room.1", {"type": "room.deleted", "room": 1})

    assert "channel layer send failed for ['room.deleted']" in caplog.text


async def test_each_groups_events_leave_in_order(capture_events: Published) -> None:
    sends = [("room.1", {"type": "a"}), ("room.2", {"type": "b"}), ("room.1", {"type": "c"})]

    await publish.publish_many(sends)

    assert [e["type"] for g, e in capture_events if g == "room.1"] == ["a", "c"]
    assert [e["type"] for g, e in capture_events if g == "room.2"] == ["b"]
