"""``GET /rooms/{id}/changes/?after=<rev>``: a room's messages changed after a revision,
each once in its current state, in rev order (API.md, Revisions)."""

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from messaging.services import message_create, message_delete, message_update
from rooms.models import Membership, Room
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(room: Room, query: str = "") -> str:
    return f"/api/v1/rooms/{room.pk}/changes/{query}"


def send(room: Room, user: User, body: str) -> Message:
    return message_create(room=room, author=user, body=body).message


def pages(client: APIClient, first: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    next_url: str | None = first
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        results.extend(body["results"])
        next_url = body["next"]
    return results


def history(client: APIClient, room: Room) -> dict[int, dict[str, Any]]:
    response = client.get(f"/api/v1/rooms/{room.pk}/messages/?limit=100")
    return {m["id"]: m for m in response.json()["results"]}


def test_changes_come_once_each_in_rev_order_with_tombstones(
    auth_client: APIClient, room: Room, user: User
) -> None:
    first, second, third = (send(room, user, body) for body in ("a", "b", "c"))
    message_update(message=first, body="a, edited")  # rev 4
    message_delete(message=second)  # rev 5
    message_update(message=first, body="a, edited again")  # rev 6

    changes = pages(auth_client, url(room, "?after=1"))

    assert [(m["id"], m["rev"]) for m in changes] == [(third.pk, 3), (second.pk, 5), (first.pk, 6)]
    assert (changes[1]["body"], changes[1]["is_deleted"]) == ("", True)
    assert changes[2]["body"] == "a, edited again"
    assert changes == [history(auth_client, room)[m["id"]] for m in changes]  # same shape


def test_after_defaults_to_zero_and_beyond_the_newest_is_an_empty_page(
    auth_client: APIClient, room: Room, user: User
) -> None:
    send(room, user, "a")

    assert [m["rev"] for m in auth_client.get(url(room)).json()["results"]] == [1]
    beyond = auth_client.get(url(room, "?after=99")).json()
    assert (beyond["results"], beyond["next"]) == ([], None)


@override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1000)
def test_pages_follow_next_by_rev_and_limit_is_capped(
    auth_client: APIClient, room: Room, user: User
) -> None:
    for n in range(7):
        send(room, user, f"m{n}")

    first = auth_client.get(url(room, "?limit=3")).json()
    assert [m["rev"] for m in first["results"]] == [1, 2, 3]
    assert first["next"].endswith("after=3") or "after=3&" in first["next"]
    assert [m["rev"] for m in pages(auth_client, url(room, "?limit=3"))] == list(range(1, 8))
    for n in range(110):
        send(room, user, f"more {n}")
    assert len(auth_client.get(url(room, "?limit=1000")).json()["results"]) == 100


def test_a_page_holds_50_changes_unless_told(auth_client: APIClient, room: Room) -> None:
    MessageFactory.create_batch(51, room=room)

    first = auth_client.get(url(room)).json()
    assert [m["rev"] for m in first["results"]] == list(range(1, 51))
    assert [m["rev"] for m in auth_client.get(first["next"]).json()["results"]] == [51]


@pytest.mark.parametrize("query", ["?after=-1", "?after=x", f"?after={2**63}", "?limit=0"])
def test_bad_parameters_are_400(auth_client: APIClient, room: Room, query: str) -> None:
    response = auth_client.get(url(room, query))

    assert response.status_code == 400, response.content


def test_anyone_who_can_see_the_room_reads_its_changes(
    client_for: Any, room: Room, user: User
) -> None:
    send(room, user, "public words")
    private = RoomFactory.create(owner=user, visibility="private")
    send(private, user, "secret")
    outsider = client_for(UserFactory.create())

    assert [m["body"] for m in pages(outsider, url(room))] == ["public words"]
    assert outsider.get(url(private)).status_code == 404
    assert outsider.get("/api/v1/rooms/999999/changes/").status_code == 404
    assert APIClient().get(url(room)).status_code == 401


def test_applying_the_changes_to_a_snapshot_gives_the_current_room(
    auth_client: APIClient, room: Room, user: User
) -> None:
    other = UserFactory.create()
    Membership.objects.create(room=room, user=other)
    messages = [send(room, user if n % 2 else other, f"m{n}") for n in range(6)]
    snapshot = history(auth_client, room)
    held = Room.objects.get(pk=room.pk).last_rev

    message_update(message=messages[1], body="m1 again")
    message_delete(message=messages[2])
    send(room, other, "new one")
    message_update(message=messages[5], body="m5 again")
    message_delete(message=messages[1])

    for change in pages(auth_client, url(room, f"?after={held}&limit=2")):
        snapshot[change["id"]] = change
    assert snapshot == history(auth_client, room)


def test_a_page_walks_the_room_rev_index(auth_client: APIClient, room: Room, user: User) -> None:
    """The same cost at any depth: an index range, never a scan of the room's messages."""
    if connection.vendor != "sqlite":
        pytest.skip("the plan is checked on SQLite; PostgreSQL plans by table statistics")
    send(room, user, "a")

    with CaptureQueriesContext(connection) as captured:
        auth_client.get(url(room, "?after=0"))
    [query] = [q for q in captured.captured_queries if '"messaging_message"."rev" >' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
        plan = " ".join(str(row) for row in cursor.fetchall())

    # SQLite names the (room, rev) unique constraint's index sqlite_autoindex_...
    assert "USING INDEX" in plan, plan
    assert "(room_id=? AND rev>?)" in plan, plan
    assert "USE TEMP B-TREE" not in plan, plan
