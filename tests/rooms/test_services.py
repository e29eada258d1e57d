from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import User
from messaging.models import Message
from realtime.groups import room_group, user_group
from rooms.models import Membership, Room
from rooms.services import (
    membership_add,
    membership_remove,
    room_create,
    room_delete,
    room_join,
    room_leave,
    room_mark_read,
    room_update,
)
from tests.conftest import Published
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_room_create_makes_the_owner_its_first_member(user: User) -> None:
    room = room_create(name="  general  ", topic=" hi ", owner=user)

    assert (room.name, room.topic, room.visibility) == ("general", "hi", "public")
    assert list(room.memberships.values_list("user", flat=True)) == [user.pk]


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "ok", "topic": "t" * 257}, "topic"),
        ({"name": "ok", "visibility": "hidden"}, "visibility"),
    ],
)
def test_room_create_enforces_the_rules_itself(
    user: User, fields: dict[str, str], error_field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        room_create(owner=user, **fields)

    assert error_field in caught.value.message_dict
    assert not Room.objects.exists()


def test_room_create_turns_a_name_clash_into_a_field_error(user: User) -> None:
    RoomFactory.create(name="General")

    with pytest.raises(ValidationError) as caught:
        room_create(name="GENERAL", owner=user)

    assert caught.value.message_dict == {"name": ["A room with that name already exists."]}


def test_room_create_turns_a_lost_race_on_the_name_into_a_field_error(user: User) -> None:
    RoomFactory.create(name="general")

    # The check before the insert sees no clash (another request has not committed yet);
    # the database constraint then refuses the row.
    with (
        mock.patch("rooms.services.room_name_taken", side_effect=[False, True]),
        pytest.raises(ValidationError) as caught,
    ):
        room_create(name="General", owner=user)

    assert "name" in caught.value.message_dict
    assert Room.objects.count() == 1
    assert Membership.objects.filter(user=user).count() == 0


def test_room_update_saves_and_broadcasts_after_commit(
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        updated = room_update(room=room, by=room.owner, topic="news", visibility="private")
        assert capture_events == []  # not before the commit

    assert len(callbacks) == 1
    [(group, event)] = capture_events
    assert (group, event["type"]) == (room_group(room.pk), "room.updated")
    assert event["room"]["visibility"] == "private"
    room.refresh_from_db()
    assert (room.topic, room.visibility, updated.topic) == ("news", "private", "news")


def test_room_update_that_fails_broadcasts_nothing(
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    RoomFactory.create(name="taken")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        room_update(room=room, by=room.owner, name="Taken")

    assert capture_events == []


def test_room_delete_removes_messages_and_broadcasts_after_commit(
    room: Room,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    MessageFactory.create_batch(2, room=room)
    room_id = room.pk

    with django_capture_on_commit_callbacks(execute=True):
        room_delete(room=room)

    assert capture_events == [(room_group(room_id), {"type": "room.deleted", "room": room_id})]
    assert not Room.objects.filter(pk=room_id).exists()
    assert not Message.objects.filter(room_id=room_id).exists()


def test_room_delete_of_a_room_already_gone_is_a_404(room: Room) -> None:
    Room.objects.filter(pk=room.pk).delete()

    with pytest.raises(Http404):
        room_delete(room=room)


def test_room_join_is_idempotent(room: Room, other_user: User) -> None:
    first = room_join(room=room, user=other_user)
    second = room_join(room=room, user=other_user)

    assert first.pk == second.pk
    assert room.memberships.count() == 2


def test_room_join_refuses_a_private_room_to_a_non_member(other_user: User) -> None:
    private = RoomFactory.create(visibility="private")

    with pytest.raises(PermissionDenied):
        room_join(room=private, user=other_user)


def test_room_leave_removes_the_member_and_broadcasts_after_commit(
    room: Room,
    other_user: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    Membership.objects.create(room=room, user=other_user)

    with django_capture_on_commit_callbacks(execute=True):
        room_leave(room=room, user=other_user)

    removed = {"type": "member.removed", "user_id": other_user.pk}
    left = {"type": "room.left", "room": room.pk, "reason": "left"}
    assert capture_events == [(room_group(room.pk), removed), (user_group(other_user.pk), left)]
    assert not room.memberships.filter(user=other_user).exists()


def test_room_leave_refuses_the_owner_and_non_members(
    room: Room, other_user: User, capture_events: Published
) -> None:
    with pytest.raises(ValidationError):
        room_leave(room=room, user=room.owner)
    with pytest.raises(ValidationError):
        room_leave(room=room, user=other_user)

    assert capture_events == []


def test_membership_add_finds_the_user_without_regard_to_case(room: Room, other_user: User) -> None:
    membership, created = membership_add(
        room=room, username=other_user.username.upper(), by=room.owner
    )
    again, created_again = membership_add(room=room, username=other_user.username, by=room.owner)

    assert (membership.user, created) == (other_user, True)
    assert (again.pk, created_again) == (membership.pk, False)


def test_membership_add_refuses_unknown_and_inactive_users(room: Room) -> None:
    UserFactory.create(username="sleeper", is_active=False)

    for username in ("nobody", "sleeper"):
        with pytest.raises(ValidationError) as caught:
            membership_add(room=room, username=username, by=room.owner)
        assert "username" in caught.value.message_dict


def test_membership_add_is_for_the_owner_only(room: Room, other_user: User) -> None:
    with pytest.raises(PermissionDenied):
        membership_add(room=room, username=other_user.username, by=other_user)


def test_membership_remove_broadcasts_after_commit(
    room: Room,
    other_user: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    Membership.objects.create(room=room, user=other_user)

    with django_capture_on_commit_callbacks(execute=True):
        membership_remove(room=room, user_id=other_user.pk)

    removed = {"type": "member.removed", "user_id": other_user.pk}
    left = {"type": "room.left", "room": room.pk, "reason": "removed"}
    assert capture_events == [(room_group(room.pk), removed), (user_group(other_user.pk), left)]


def test_membership_remove_refuses_the_owner_and_non_members(
    room: Room, other_user: User, capture_events: Published
) -> None:
    with pytest.raises(ValidationError):
        membership_remove(room=room, user_id=room.owner_id)
    with pytest.raises(Http404):
        membership_remove(room=room, user_id=other_user.pk)

    assert capture_events == []


def test_room_mark_read_moves_forward_only_and_clamps(room: Room) -> None:
    MessageFactory.create_batch(4, room=room)
    owner = room.owner

    def marker() -> int:
        return Membership.objects.get(room=room, user=owner).last_read_seq

    assert room_mark_read(room=room, user=owner, seq=2) is True
    assert marker() == 2
    assert room_mark_read(room=room, user=owner, seq=1) is False
    assert marker() == 2
    assert room_mark_read(room=room, user=owner, seq=2**70) is True
    assert marker() == 4
    assert room_mark_read(room=room, user=owner, seq=0) is False
    assert marker() == 4


def test_room_mark_read_clamps_to_the_rooms_current_last_seq_not_a_stale_copy(
    room: Room,
) -> None:
    stale = Room.objects.get(pk=room.pk)  # last_seq 0, as a socket opened earlier holds it
    MessageFactory.create_batch(3, room=room)

    room_mark_read(room=stale, user=room.owner, seq=3)

    assert Membership.objects.get(room=room, user=room.owner).last_read_seq == 3


@pytest.mark.parametrize("seq", [-1, "3", 1.0, True, None])
def test_room_mark_read_wants_a_non_negative_integer(room: Room, seq: object) -> None:
    with pytest.raises(ValidationError) as caught:
        room_mark_read(room=room, user=room.owner, seq=seq)  # type: ignore[arg-type]

    assert "seq" in caught.value.message_dict


def test_room_mark_read_refuses_a_non_member(room: Room, other_user: User) -> None:
    with pytest.raises(PermissionDenied):
        room_mark_read(room=room, user=other_user, seq=0)
