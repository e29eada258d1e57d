import pytest
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import User
from realtime.groups import room_group, user_group
from rooms.models import Membership, Room
from tests.conftest import Published

pytestmark = pytest.mark.django_db


def test_admin_lists_and_opens_rooms_and_memberships(
    admin_client: Client, room: Room, other_user: User
) -> None:
    membership = Membership.objects.create(room=room, user=other_user)

    for url in (
        "/admin/rooms/room/",
        f"/admin/rooms/room/{room.pk}/change/",
        "/admin/rooms/membership/",
        f"/admin/rooms/membership/{membership.pk}/change/",
    ):
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_a_room_added_in_the_admin_has_its_owner_as_member(
    admin_client: Client, user: User, visibility: str
) -> None:
    response = admin_client.post(
        "/admin/rooms/room/add/",
        {
            "name": "from-admin",
            "topic": "",
            "visibility": visibility,
            "owner": user.pk,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content
    room = Room.objects.get(name="from-admin", visibility=visibility)
    assert list(room.memberships.values_list("user", flat=True)) == [user.pk]


def test_changing_a_room_in_the_admin_tells_live_sockets(
    admin_client: Client,
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/rooms/room/{room.pk}/change/",
            {
                "name": "renamed",
                "topic": "new topic",
                "visibility": "private",
                "memberships-TOTAL_FORMS": "1",
                "memberships-INITIAL_FORMS": "1",
                "memberships-0-id": room.memberships.get().pk,
                "memberships-0-room": room.pk,
            },
        )

    assert response.status_code == 302, response.content
    room.refresh_from_db()
    assert (room.name, room.topic, room.visibility) == ("renamed", "new topic", "private")
    [(group, event)] = capture_events
    assert (group, event["type"]) == (room_group(room.pk), "room.updated")
    assert event["room"]["name"] == "renamed"


def test_deleting_in_the_admin_tells_live_sockets(
    admin_client: Client,
    room: Room,
    other_user: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    membership = Membership.objects.create(room=room, user=other_user)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/rooms/membership/{membership.pk}/delete/", {"post": "yes"})
        admin_client.post(f"/admin/rooms/room/{room.pk}/delete/", {"post": "yes"})

    assert capture_events == [
        (room_group(room.pk), {"type": "member.removed", "user_id": other_user.pk}),
        (user_group(other_user.pk), {"type": "room.left", "room": room.pk, "reason": "removed"}),
        (room_group(room.pk), {"type": "room.deleted", "room": room.pk}),
    ]
    assert not Room.objects.exists()


def test_the_owners_membership_cannot_be_deleted_in_the_admin(
    admin_client: Client, room: Room
) -> None:
    membership = room.memberships.get(user=room.owner)
    url = f"/admin/rooms/membership/{membership.pk}/delete/"

    assert "the room&#x27;s owner" in admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})
    admin_client.post(
        "/admin/rooms/membership/",
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )

    assert Membership.objects.filter(pk=membership.pk).exists()
