"""``POST /api/v1/sync/``: one request brings a device up to date on every room (API.md,
Sync)."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from messaging.services import message_create, message_delete, message_update
from rooms.models import Membership, Room
from rooms.services import membership_remove, room_delete
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sync/"


def send(room: Room, user: User, body: str) -> Message:
    return message_create(room=room, author=user, body=body).message


def sync(client: APIClient, rooms: dict[str, int] | None = None) -> dict[str, Any]:
    response = client.post(URL, {} if rooms is None else {"rooms": rooms}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def by_room(answer: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {entry["room"]["id"]: entry for entry in answer["rooms"]}


def test_first_start_lists_every_member_room_without_changes(
    auth_client: APIClient, user: User
) -> None:
    older, newer = RoomFactory.create(owner=user), RoomFactory.create(owner=user)
    send(older, user, "a")
    send(newer, user, "b")  # most recently active
    RoomFactory.create()  # a public room the user is not in

    answer = sync(auth_client)

    assert [entry["room"]["id"] for entry in answer["rooms"]] == [newer.pk, older.pk]
    assert all(entry["changes"] == [] and entry["next"] is None for entry in answer["rooms"])
    assert answer["left"] == []
    room = answer["rooms"][0]["room"]
    assert (room["is_member"], room["role"], room["last_rev"]) == (True, "owner", 1)
    assert room == auth_client.get(f"/api/v1/rooms/{newer.pk}/").json()


def test_named_rooms_get_their_changes_after_the_revision_edits_and_deletions_included(
    auth_client: APIClient, user: User, room: Room
) -> None:
    first, second, third = (send(room, user, body) for body in ("a", "b", "c"))
    message_update(message=first, body="a, edited")  # rev 4
    message_delete(message=second)  # rev 5

    [entry] = sync(auth_client, {str(room.pk): 1})["rooms"]

    assert [(m["id"], m["rev"]) for m in entry["changes"]] == [
        (third.pk, 3),
        (first.pk, 4),
        (second.pk, 5),
    ]
    assert entry["changes"][1]["body"] == "a, edited"
    assert (entry["changes"][2]["is_deleted"], entry["changes"][2]["body"]) == (True, "")
    assert entry["next"] is None
    # Exactly what changes/ answers, message for message.
    changes = auth_client.get(f"/api/v1/rooms/{room.pk}/changes/?after=1").json()["results"]
    assert entry["changes"] == changes


def test_a_client_that_holds_the_newest_revision_gets_nothing(
    auth_client: APIClient, user: User, room: Room
) -> None:
    send(room, user, "a")

    [entry] = sync(auth_client, {str(room.pk): 1})["rooms"]

    assert entry["changes"] == []
    assert entry["next"] is None


def test_more_than_100_changes_stop_at_100_and_next_continues_in_changes(
    auth_client: APIClient, user: User, room: Room
) -> None:
    MessageFactory.create_batch(130, room=room)

    [entry] = sync(auth_client, {str(room.pk): 10})["rooms"]

    assert [m["rev"] for m in entry["changes"]] == list(range(11, 111))
    assert entry["next"] == f"http://testserver/api/v1/rooms/{room.pk}/changes/?after=110&limit=100"
    rest = auth_client.get(entry["next"]).json()
    assert [m["rev"] for m in rest["results"]] == list(range(111, 131))
    assert rest["next"] is None


def test_left_lists_named_rooms_the_caller_no_longer_has_whatever_the_reason(
    auth_client: APIClient, user: User, other_user: User
) -> None:
    kept = RoomFactory.create(owner=user)
    removed_from = RoomFactory.create(owner=other_user, members=[user])
    deleted = RoomFactory.create(owner=other_user, members=[user])
    hidden = RoomFactory.create(owner=other_user, visibility=Room.Visibility.PRIVATE)
    public_not_joined = RoomFactory.create(owner=other_user)
    membership_remove(room=removed_from, user_id=user.pk)
    deleted_id = deleted.pk
    room_delete(room=deleted)
    never = 10**12

    named = [kept.pk, removed_from.pk, deleted_id, hidden.pk, public_not_joined.pk, never]
    answer = sync(auth_client, {str(room_id): 0 for room_id in named})

    assert list(by_room(answer)) == [kept.pk]
    assert answer["left"] == sorted(
        [removed_from.pk, deleted_id, hidden.pk, public_not_joined.pk, never]
    )


def test_a_room_that_is_not_named_comes_without_changes(auth_client: APIClient, user: User) -> None:
    named, unnamed = RoomFactory.create(owner=user), RoomFactory.create(owner=user)
    send(named, user, "a")
    send(unnamed, user, "b")

    rooms = by_room(sync(auth_client, {str(named.pk): 0}))

    assert [m["body"] for m in rooms[named.pk]["changes"]] == ["a"]
    assert rooms[unnamed.pk]["changes"] == []


def test_private_rooms_of_others_never_leak_their_changes(
    auth_client: APIClient, other_user: User
) -> None:
    secret = RoomFactory.create(owner=other_user, visibility=Room.Visibility.PRIVATE)
    send(secret, other_user, "secret")

    answer = sync(auth_client, {str(secret.pk): 0})

    assert answer["rooms"] == []
    assert answer["left"] == [secret.pk]


def test_syncing_changes_nothing_and_repeats_alike(
    auth_client: APIClient, user: User, room: Room
) -> None:
    send(room, user, "a")
    Membership.objects.filter(room=room, user=user).update(last_read_seq=0)

    first = sync(auth_client, {str(room.pk): 0})
    second = sync(auth_client, {str(room.pk): 0})

    assert first == second
    assert Membership.objects.get(room=room, user=user).last_read_seq == 0
    assert first["rooms"][0]["room"]["unread_count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"rooms": []},
        {"rooms": {"abc": 1}},
        {"rooms": {"-3": 1}},
        {"rooms": {"0": 1}},
        {"rooms": {"7": -1}},
        {"rooms": {"7": "x"}},
        {"rooms": {"7": None}},
        {"rooms": {"1" * 30: 1}},
        {"rooms": {str(n): 0 for n in range(1, 1002)}},
    ],
)
def test_bad_bodies_are_400_with_the_field_named(auth_client: APIClient, body: Any) -> None:
    response = auth_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert "rooms" in response.json()


def test_it_needs_a_token(api_client: APIClient) -> None:
    assert api_client.post(URL, {}, format="json").status_code == 401


def test_a_user_in_500_rooms_syncs_in_a_handful_of_queries(
    auth_client: APIClient, user: User
) -> None:
    owner = UserFactory.create()
    rooms = Room.objects.bulk_create(
        [Room(name=f"r{n}", name_folded=f"r{n}", owner=owner, last_seq=0) for n in range(500)]
    )
    Membership.objects.bulk_create([Membership(room=room, user=user) for room in rooms])
    for room in rooms[:50]:
        MessageFactory.create_batch(2, room=room)

    with CaptureQueriesContext(connection) as queries:
        answer = sync(auth_client, {str(room.pk): 0 for room in rooms})

    assert len(answer["rooms"]) == 500
    assert sum(len(entry["changes"]) for entry in answer["rooms"]) == 100
    # Authentication, the rooms, their last messages, and the changes (a query per 250
    # rooms named): not a query per room.
    assert len(queries) <= 8, [q["sql"][:80] for q in queries.captured_queries]
