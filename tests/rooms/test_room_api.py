from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries, DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from realtime.groups import room_group, user_group
from rooms.models import Membership, Room
from tests.conftest import Published
from tests.factories import MembershipFactory, MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], APIClient]
ROOMS = "/api/v1/rooms/"


def room_url(room: Room, suffix: str = "") -> str:
    return f"{ROOMS}{room.pk}/{suffix}"


def set_activity(room: Room, minutes_ago: int) -> None:
    Room.objects.filter(pk=room.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


# LIST


def test_list_needs_authentication(api_client: APIClient, room: Room) -> None:
    assert api_client.get(ROOMS).status_code == 401


def test_list_shows_public_rooms_and_own_private_rooms_only(
    client_for: ClientFor, owner: User, member: User, outsider: User, room: Room
) -> None:
    private_mine = RoomFactory.create(owner=owner, visibility="private", members=[member])
    private_other = RoomFactory.create(visibility="private")

    def names(user: User) -> set[str]:
        response = client_for(user).get(ROOMS)
        assert response.status_code == 200
        return {r["name"] for r in response.json()["results"]}

    assert names(member) == {room.name, private_mine.name}
    assert names(outsider) == {room.name}
    assert private_other.name not in names(owner)


def test_list_is_paginated_most_recently_active_first(auth_client: APIClient, owner: User) -> None:
    old, newest, middle = RoomFactory.create_batch(3, owner=owner)
    set_activity(old, 30)
    set_activity(newest, 1)
    set_activity(middle, 10)

    first = auth_client.get(ROOMS, {"limit": 2}).json()
    assert set(first) == {"next", "previous", "results"}
    assert [r["id"] for r in first["results"]] == [newest.pk, middle.pk]
    assert first["next"] is not None
    assert first["previous"] is None

    second = auth_client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [old.pk]
    assert second["next"] is None
    assert second["previous"] is not None


def test_list_with_joined_true_shows_only_the_callers_rooms(
    client_for: ClientFor, member: User, room: Room
) -> None:
    RoomFactory.create_batch(2)

    response = client_for(member).get(ROOMS, {"joined": "true"})

    assert [r["id"] for r in response.json()["results"]] == [room.pk]
    assert len(client_for(member).get(ROOMS, {"joined": "false"}).json()["results"]) == 3


def test_list_with_search_matches_names_without_regard_to_case(auth_client: APIClient) -> None:
    RoomFactory.create(name="general")
    RoomFactory.create(name="Gen-Z")
    RoomFactory.create(name="random")

    response = auth_client.get(ROOMS, {"search": "GEN"})

    assert sorted(r["name"] for r in response.json()["results"]) == ["Gen-Z", "general"]


def test_list_with_a_bad_joined_value_is_a_400(auth_client: APIClient) -> None:
    response = auth_client.get(ROOMS, {"joined": "perhaps"})

    assert response.status_code == 400
    assert "joined" in response.json()


def test_list_shows_every_room_field_for_owner_member_and_outsider(
    client_for: ClientFor, owner: User, member: User, outsider: User, room: Room
) -> None:
    MessageFactory.create_batch(3, room=room)
    Membership.objects.filter(room=room, user=member).update(last_read_seq=1)

    def only_room(user: User) -> dict[str, Any]:
        (data,) = client_for(user).get(ROOMS).json()["results"]
        return data

    as_owner, as_member, as_outsider = only_room(owner), only_room(member), only_room(outsider)
    assert set(as_owner) == {
        "id",
        "kind",
        "name",
        "topic",
        "visibility",
        "owner",
        "created_at",
        "member_count",
        "is_member",
        "role",
        "unread_count",
        "last_seq",
        "last_rev",
        "last_message",
    }
    assert (as_owner["kind"], as_owner["last_seq"], as_owner["last_rev"]) == ("channel", 3, 3)
    assert as_owner["owner"] == {
        "id": owner.pk,
        "username": owner.username,
        "display_name": owner.display_name,
    }
    assert as_owner["member_count"] == as_outsider["member_count"] == 2
    assert (as_owner["is_member"], as_owner["role"], as_owner["unread_count"]) == (
        True,
        "owner",
        3,
    )
    assert (as_member["is_member"], as_member["role"], as_member["unread_count"]) == (
        True,
        "member",
        2,
    )
    assert (as_outsider["is_member"], as_outsider["role"], as_outsider["unread_count"]) == (
        False,
        None,
        None,
    )
    assert as_owner["created_at"].endswith("Z")


def test_list_shows_the_last_message_of_each_room(auth_client: APIClient, room: Room) -> None:
    quiet = RoomFactory.create()
    MessageFactory.create(room=room, body="first")
    last = MessageFactory.create(room=room, body="second", client_id="c-1")

    results = {r["id"]: r for r in auth_client.get(ROOMS).json()["results"]}

    assert results[quiet.pk]["last_message"] is None
    assert results[room.pk]["last_message"] == {
        "id": last.pk,
        "room": room.pk,
        "seq": 2,
        "rev": 2,
        "author": {
            "id": room.owner.pk,
            "username": room.owner.username,
            "display_name": room.owner.display_name,
        },
        "body": "second",
        "client_id": "c-1",
        "created_at": last.created_at.isoformat().replace("+00:00", "Z"),
        "edited_at": None,
        "is_deleted": False,
    }


def test_listing_100_rooms_takes_a_constant_number_of_queries(
    client_for: ClientFor, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    viewer = UserFactory.create()
    others = UserFactory.create_batch(3)
    for index in range(100):
        visibility = "private" if index % 3 == 0 else "public"
        members = [*others, viewer] if index % 2 == 0 else others
        room = RoomFactory.create(visibility=visibility, members=members)
        MessageFactory.create_batch(2, room=room, author=others[0])
    client = client_for(viewer)

    # Authentication (1), the page of rooms with their counts (1), their last messages (1).
    with django_assert_max_num_queries(4):
        response = client.get(ROOMS, {"limit": 100})

    results = response.json()["results"]
    assert len(results) == 83  # private rooms without the viewer are hidden
    assert all(r["last_message"]["seq"] == 2 for r in results)
    assert all(r["member_count"] == len(others) + 1 + r["is_member"] for r in results)


# CREATE


def test_create_makes_the_caller_owner_and_first_member(
    auth_client: APIClient, owner: User
) -> None:
    response = auth_client.post(
        ROOMS, {"name": "general", "topic": "Anything", "visibility": "private"}, format="json"
    )

    assert response.status_code == 201
    data = response.json()
    room = Room.objects.get(pk=data["id"])
    assert (room.name, room.topic, room.visibility, room.owner) == (
        "general",
        "Anything",
        "private",
        owner,
    )
    assert list(room.memberships.values_list("user", flat=True)) == [owner.pk]
    assert data["member_count"] == 1
    assert (data["is_member"], data["role"], data["unread_count"]) == (True, "owner", 0)
    assert data["last_message"] is None


def test_create_defaults_to_a_public_room_with_no_topic(auth_client: APIClient) -> None:
    data = auth_client.post(ROOMS, {"name": "general"}, format="json").json()

    assert (data["visibility"], data["topic"]) == ("public", "")


def test_create_trims_the_name(auth_client: APIClient) -> None:
    response = auth_client.post(ROOMS, {"name": "  general \n"}, format="json")

    assert response.status_code == 201
    assert response.json()["name"] == "general"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "bad\x1bname"}, "name"),
        ({"name": "tab\tinside"}, "name"),
        ({"name": None}, "name"),
        ({"name": "ok", "topic": "t" * 257}, "topic"),
        ({"name": "ok", "topic": "bell\x07"}, "topic"),
        ({"name": "ok", "visibility": "secret"}, "visibility"),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "65 chars",
        "NUL",
        "escape",
        "tab",
        "null",
        "topic 257",
        "topic control",
        "visibility",
    ],
)
def test_create_rejects_bad_input_with_a_field_error(
    auth_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = auth_client.post(ROOMS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Room.objects.exists()


def test_create_rejects_a_lone_surrogate_in_the_name(auth_client: APIClient) -> None:
    response = auth_client.post(
        ROOMS, data='{"name": "bad\\ud800"}', content_type="application/json"
    )

    assert response.status_code == 400
    assert "name" in response.json()


def test_create_accepts_64_characters_and_a_topic_of_256(auth_client: APIClient) -> None:
    response = auth_client.post(ROOMS, {"name": "é" * 64, "topic": "t" * 256}, format="json")

    assert response.status_code == 201


def test_create_rejects_a_name_taken_without_regard_to_case(auth_client: APIClient) -> None:
    RoomFactory.create(name="General")

    response = auth_client.post(ROOMS, {"name": " gENERAL "}, format="json")

    assert response.status_code == 400
    assert response.json() == {"name": ["A room with that name already exists."]}
    assert Room.objects.count() == 1


# RETRIEVE


def test_retrieve_shows_a_visible_room(
    client_for: ClientFor, outsider: User, member: User, room: Room, private_room: Room
) -> None:
    assert client_for(outsider).get(room_url(room)).json()["id"] == room.pk
    assert client_for(member).get(room_url(private_room)).json()["role"] == "member"


def test_retrieve_of_an_unknown_or_malformed_id_is_a_404(auth_client: APIClient) -> None:
    assert auth_client.get(f"{ROOMS}999999/").status_code == 404
    assert auth_client.get(f"{ROOMS}99999999999999999999999/").status_code == 404
    assert auth_client.get(f"{ROOMS}abc/").status_code == 404


def test_retrieving_a_room_takes_a_constant_number_of_queries(
    auth_client: APIClient,
    room: Room,
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    MembershipFactory.create_batch(20, room=room)
    MessageFactory.create_batch(20, room=room)

    with django_assert_max_num_queries(3):
        response = auth_client.get(room_url(room))

    assert response.json()["member_count"] == 21
    assert response.json()["last_message"]["seq"] == 20


# PATCH


def test_owner_patches_name_topic_and_visibility(auth_client: APIClient, room: Room) -> None:
    response = auth_client.patch(
        room_url(room),
        {"name": " renamed ", "topic": "new", "visibility": "private"},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["topic"]) == ("renamed", "new")
    room.refresh_from_db()
    assert (room.name, room.topic, room.visibility) == ("renamed", "new", "private")


def test_patch_changes_only_the_given_fields(auth_client: APIClient, room: Room) -> None:
    Room.objects.filter(pk=room.pk).update(topic="kept", visibility="private")

    response = auth_client.patch(room_url(room), {"name": "only-name"}, format="json")

    assert response.status_code == 200
    room.refresh_from_db()
    assert (room.name, room.topic, room.visibility) == ("only-name", "kept", "private")


def test_patch_may_change_the_case_of_the_rooms_own_name(
    auth_client: APIClient, room: Room
) -> None:
    response = auth_client.patch(room_url(room), {"name": room.name.upper()}, format="json")

    assert response.status_code == 200


def test_patch_rejects_another_rooms_name_and_bad_fields(
    auth_client: APIClient, room: Room
) -> None:
    RoomFactory.create(name="Taken")

    assert "name" in auth_client.patch(room_url(room), {"name": "TAKEN"}, format="json").json()
    assert "name" in auth_client.patch(room_url(room), {"name": " "}, format="json").json()
    assert "topic" in auth_client.patch(room_url(room), {"topic": "t" * 257}, format="json").json()
    assert auth_client.patch(room_url(room), {"visibility": "x"}, format="json").status_code == 400


def test_put_is_not_offered(auth_client: APIClient, room: Room) -> None:
    response = auth_client.put(
        room_url(room), {"name": "x", "topic": "", "visibility": "public"}, format="json"
    )

    assert response.status_code == 405


def test_patch_broadcasts_room_updated_after_commit(
    auth_client: APIClient,
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.patch(room_url(room), {"topic": "news"}, format="json")

    [(group, event)] = capture_events
    assert (group, event["type"]) == (room_group(room.pk), "room.updated")
    # The room as anyone sees it; each socket adds its user's fields.
    shared = event["room"]
    assert (shared["topic"], shared["role"], shared["unread_count"]) == ("news", None, None)


# DELETE


def test_owner_deletes_the_room_with_its_messages(
    auth_client: APIClient,
    room: Room,
    member: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    MessageFactory.create_batch(3, room=room)
    kept = MessageFactory.create()

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.delete(room_url(room))

    assert response.status_code == 204
    assert not Room.objects.filter(pk=room.pk).exists()
    assert not Membership.objects.filter(room_id=room.pk).exists()
    assert list(Message.objects.all()) == [kept]
    assert capture_events == [(room_group(room.pk), {"type": "room.deleted", "room": room.pk})]
    assert auth_client.get(room_url(room)).status_code == 404


# JOIN AND LEAVE


def test_joining_a_public_room_makes_a_member_and_answers_the_room(
    client_for: ClientFor, outsider: User, room: Room
) -> None:
    response = client_for(outsider).post(room_url(room, "join/"), format="json")

    assert response.status_code == 200
    assert (response.json()["is_member"], response.json()["role"]) == (True, "member")
    assert response.json()["member_count"] == 2
    assert Membership.objects.filter(room=room, user=outsider).exists()


def test_joining_twice_is_fine(client_for: ClientFor, outsider: User, room: Room) -> None:
    client = client_for(outsider)

    assert client.post(room_url(room, "join/"), format="json").status_code == 200
    assert client.post(room_url(room, "join/"), format="json").status_code == 200
    assert Membership.objects.filter(room=room, user=outsider).count() == 1


def test_member_leaves_and_their_sockets_are_told(
    client_for: ClientFor,
    member: User,
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(member).post(room_url(room, "leave/"), format="json")

    assert response.status_code == 204
    assert not Membership.objects.filter(room=room, user=member).exists()
    removed = {"type": "member.removed", "user_id": member.pk}
    left = {"type": "room.left", "room": room.pk, "reason": "left"}
    assert capture_events == [(room_group(room.pk), removed), (user_group(member.pk), left)]


def test_owner_cannot_leave(auth_client: APIClient, room: Room) -> None:
    response = auth_client.post(room_url(room, "leave/"), format="json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert room.memberships.filter(user=room.owner).exists()


def test_leaving_a_room_you_are_not_in_is_a_400(
    client_for: ClientFor, outsider: User, room: Room
) -> None:
    assert client_for(outsider).post(room_url(room, "leave/"), format="json").status_code == 400


# MEMBERS


def test_members_lists_users_with_roles_first_joined_first(
    client_for: ClientFor, owner: User, member: User, outsider: User, room: Room
) -> None:
    response = client_for(outsider).get(room_url(room, "members/"))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(m["user"]["id"], m["role"]) for m in results] == [
        (owner.pk, "owner"),
        (member.pk, "member"),
    ]
    assert set(results[0]) == {"user", "role", "joined_at"}
    assert set(results[0]["user"]) == {"id", "username", "display_name"}


def test_members_list_is_paginated(auth_client: APIClient, room: Room) -> None:
    MembershipFactory.create_batch(3, room=room)

    first = auth_client.get(room_url(room, "members/"), {"limit": 3}).json()
    second = auth_client.get(first["next"]).json()

    assert len(first["results"]) == 3
    assert len(second["results"]) == 1
    assert second["next"] is None


def test_owner_adds_a_member_by_username_without_regard_to_case(
    auth_client: APIClient, client_for: ClientFor, outsider: User, private_room: Room
) -> None:
    response = auth_client.post(
        room_url(private_room, "members/"), {"username": outsider.username.upper()}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["user"]["id"] == outsider.pk
    assert response.json()["role"] == "member"
    assert client_for(outsider).get(room_url(private_room)).status_code == 200


def test_adding_someone_already_in_the_room_answers_200(
    auth_client: APIClient, member: User, owner: User, room: Room
) -> None:
    response = auth_client.post(
        room_url(room, "members/"), {"username": member.username}, format="json"
    )
    again_owner = auth_client.post(
        room_url(room, "members/"), {"username": owner.username}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["role"] == "member"
    assert again_owner.json()["role"] == "owner"
    assert room.memberships.count() == 2


def test_adding_an_unknown_username_is_a_field_error(auth_client: APIClient, room: Room) -> None:
    response = auth_client.post(room_url(room, "members/"), {"username": "nobody"}, format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert auth_client.post(room_url(room, "members/"), {}, format="json").status_code == 400


def test_owner_removes_a_member_and_their_sockets_are_told(
    auth_client: APIClient,
    member: User,
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.delete(room_url(room, f"members/{member.pk}/"))

    assert response.status_code == 204
    assert not Membership.objects.filter(room=room, user=member).exists()
    removed = {"type": "member.removed", "user_id": member.pk}
    left = {"type": "room.left", "room": room.pk, "reason": "removed"}
    assert capture_events == [(room_group(room.pk), removed), (user_group(member.pk), left)]


def test_a_member_removes_themself(client_for: ClientFor, member: User, room: Room) -> None:
    response = client_for(member).delete(room_url(room, f"members/{member.pk}/"))

    assert response.status_code == 204
    assert not Membership.objects.filter(room=room, user=member).exists()


def test_the_owner_cannot_be_removed(auth_client: APIClient, owner: User, room: Room) -> None:
    response = auth_client.delete(room_url(room, f"members/{owner.pk}/"))

    assert response.status_code == 400
    assert room.memberships.filter(user=owner).exists()


def test_removing_someone_who_is_not_a_member_is_a_404(
    auth_client: APIClient, outsider: User, room: Room
) -> None:
    assert auth_client.delete(room_url(room, f"members/{outsider.pk}/")).status_code == 404
    assert auth_client.delete(room_url(room, "members/abc/")).status_code == 404
    assert auth_client.delete(room_url(room, f"members/{2**70}/")).status_code == 404
    assert auth_client.get(f"{ROOMS}{2**70}/members/").status_code == 404


# READ MARKER


def test_unread_count_follows_the_read_marker_and_never_goes_back(
    client_for: ClientFor, member: User, room: Room
) -> None:
    MessageFactory.create_batch(5, room=room)
    client = client_for(member)

    def unread() -> int:
        return client.get(room_url(room)).json()["unread_count"]

    assert unread() == 5
    assert client.post(room_url(room, "read/"), {"seq": 3}, format="json").status_code == 204
    assert unread() == 2
    assert client.post(room_url(room, "read/"), {"seq": 1}, format="json").status_code == 204
    assert unread() == 2
    MessageFactory.create(room=room)
    assert unread() == 3


def test_a_read_seq_beyond_the_newest_message_is_clamped(
    client_for: ClientFor, member: User, room: Room
) -> None:
    MessageFactory.create_batch(2, room=room)
    client = client_for(member)

    assert client.post(room_url(room, "read/"), {"seq": 10**30}, format="json").status_code == 204

    assert Membership.objects.get(room=room, user=member).last_read_seq == 2
    MessageFactory.create(room=room)
    assert client.get(room_url(room)).json()["unread_count"] == 1


@pytest.mark.parametrize("body", [{}, {"seq": -1}, {"seq": "abc"}, {"seq": None}, {"seq": 1.5}])
def test_read_rejects_a_seq_that_is_not_a_non_negative_integer(
    auth_client: APIClient, room: Room, body: dict[str, Any]
) -> None:
    response = auth_client.post(room_url(room, "read/"), body, format="json")

    assert response.status_code == 400
    assert "seq" in response.json()


# WHO MAY DO WHAT

# (visibility of the room, who asks, method, path after /rooms/{id}/, body, status)
PERMISSION_CASES = [
    ("public", "owner", "get", "", None, 200),
    ("public", "member", "get", "", None, 200),
    ("public", "outsider", "get", "", None, 200),
    ("private", "owner", "get", "", None, 200),
    ("private", "member", "get", "", None, 200),
    ("private", "outsider", "get", "", None, 404),
    ("public", "owner", "patch", "", {"topic": "x"}, 200),
    ("public", "member", "patch", "", {"topic": "x"}, 403),
    ("public", "outsider", "patch", "", {"topic": "x"}, 403),
    ("private", "member", "patch", "", {"topic": "x"}, 403),
    ("private", "outsider", "patch", "", {"topic": "x"}, 404),
    ("public", "member", "delete", "", None, 403),
    ("public", "outsider", "delete", "", None, 403),
    ("private", "member", "delete", "", None, 403),
    ("private", "outsider", "delete", "", None, 404),
    ("public", "owner", "delete", "", None, 204),
    ("private", "owner", "delete", "", None, 204),
    ("public", "owner", "post", "join/", None, 200),
    ("public", "member", "post", "join/", None, 200),
    ("public", "outsider", "post", "join/", None, 200),
    ("private", "owner", "post", "join/", None, 200),
    ("private", "member", "post", "join/", None, 200),
    ("private", "outsider", "post", "join/", None, 404),
    ("public", "owner", "post", "leave/", None, 400),
    ("public", "member", "post", "leave/", None, 204),
    ("public", "outsider", "post", "leave/", None, 400),
    ("private", "owner", "post", "leave/", None, 400),
    ("private", "member", "post", "leave/", None, 204),
    ("private", "outsider", "post", "leave/", None, 404),
    ("public", "owner", "get", "members/", None, 200),
    ("public", "member", "get", "members/", None, 200),
    ("public", "outsider", "get", "members/", None, 200),
    ("private", "member", "get", "members/", None, 200),
    ("private", "outsider", "get", "members/", None, 404),
    ("public", "owner", "post", "members/", {"username": "newcomer"}, 201),
    ("public", "member", "post", "members/", {"username": "newcomer"}, 403),
    ("public", "outsider", "post", "members/", {"username": "newcomer"}, 403),
    ("private", "owner", "post", "members/", {"username": "newcomer"}, 201),
    ("private", "member", "post", "members/", {"username": "newcomer"}, 403),
    ("private", "outsider", "post", "members/", {"username": "newcomer"}, 404),
    ("public", "owner", "delete", "members/{member}/", None, 204),
    ("public", "member", "delete", "members/{member}/", None, 204),
    ("public", "member", "delete", "members/{owner}/", None, 403),
    ("public", "outsider", "delete", "members/{member}/", None, 403),
    ("private", "owner", "delete", "members/{member}/", None, 204),
    ("private", "member", "delete", "members/{member}/", None, 204),
    ("private", "outsider", "delete", "members/{member}/", None, 404),
    ("private", "outsider", "delete", "members/{outsider}/", None, 404),
    ("public", "owner", "post", "read/", {"seq": 1}, 204),
    ("public", "member", "post", "read/", {"seq": 1}, 204),
    ("public", "outsider", "post", "read/", {"seq": 1}, 403),
    ("private", "member", "post", "read/", {"seq": 1}, 204),
    ("private", "outsider", "post", "read/", {"seq": 1}, 404),
]


@pytest.mark.parametrize(
    ("visibility", "actor", "method", "path", "body", "expected"),
    PERMISSION_CASES,
    ids=[f"{v}-{a}-{m}-{p or 'room'}" for v, a, m, p, _, _ in PERMISSION_CASES],
)
def test_who_may_do_what(
    client_for: ClientFor,
    owner: User,
    member: User,
    outsider: User,
    visibility: str,
    actor: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: int,
) -> None:
    UserFactory.create(username="newcomer")
    target = RoomFactory.create(owner=owner, visibility=visibility, members=[member])
    MessageFactory.create(room=target)
    users = {"owner": owner, "member": member, "outsider": outsider}
    path = path.format(**{name: u.pk for name, u in users.items()})

    response = getattr(client_for(users[actor]), method)(
        room_url(target, path), body, format="json"
    )

    assert response.status_code == expected, response.content
    if expected in (403, 404):
        assert "detail" in response.json()


def test_a_hidden_private_room_answers_like_a_missing_one(
    client_for: ClientFor, outsider: User, private_room: Room
) -> None:
    client = client_for(outsider)
    hidden = client.get(room_url(private_room))
    missing = client.get(f"{ROOMS}{private_room.pk + 1000}/")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


# SCHEMA


def test_schema_describes_every_rooms_endpoint(api_client: APIClient) -> None:
    response = api_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/v1/rooms/": {"get", "post"},
        "/api/v1/rooms/{room_id}/": {"get", "patch", "delete"},
        "/api/v1/rooms/{room_id}/join/": {"post"},
        "/api/v1/rooms/{room_id}/leave/": {"post"},
        "/api/v1/rooms/{room_id}/read/": {"post"},
        "/api/v1/rooms/{room_id}/members/": {"get", "post"},
        "/api/v1/rooms/{room_id}/members/{user_id}/": {"delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    components = response.json()["components"]["schemas"]
    assert set(components["Room"]["properties"]) >= {"member_count", "unread_count", "role"}
    assert "PaginatedRoomList" in components
    assert "PaginatedMemberList" in components
    assert set(paths["/api/v1/rooms/{room_id}/"]["delete"]["responses"]) >= {"204", "403", "404"}
