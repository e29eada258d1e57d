from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from rooms.models import Membership, Room
from rooms.selectors import (
    membership_list_for_room,
    room_get_for_user,
    room_last_message,
    room_list_for_user,
)
from rooms.serializers import RoomSerializer
from tests.factories import MembershipFactory, MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_room_list_for_user_annotates_what_the_serializer_shows(
    room: Room, other_user: User
) -> None:
    MessageFactory.create_batch(3, room=room)
    Membership.objects.create(room=room, user=other_user, last_read_seq=1)
    outsider = UserFactory.create()

    (as_owner,) = room_list_for_user(user=room.owner)
    (as_member,) = room_list_for_user(user=other_user)
    (as_outsider,) = room_list_for_user(user=outsider)

    assert (as_owner.is_member, as_owner.role, as_owner.unread_count) == (True, "owner", 3)
    assert (as_member.is_member, as_member.role, as_member.unread_count) == (True, "member", 2)
    assert (as_outsider.is_member, as_outsider.role, as_outsider.unread_count) == (
        False,
        None,
        None,
    )
    assert as_owner.member_count == as_outsider.member_count == 2


def test_room_list_for_user_hides_private_rooms_of_others(user: User) -> None:
    mine = RoomFactory.create(visibility="private", members=[user])
    RoomFactory.create(visibility="private")
    public = RoomFactory.create()

    assert set(room_list_for_user(user=user)) == {mine, public}
    assert list(room_list_for_user(user=user, joined=True)) == [mine]


def test_room_list_for_user_orders_by_activity_then_id(user: User) -> None:
    now = timezone.now()
    a, b, c = RoomFactory.create_batch(3)
    Room.objects.filter(pk__in=[a.pk, b.pk]).update(last_activity_at=now)
    Room.objects.filter(pk=c.pk).update(last_activity_at=now + timedelta(seconds=1))

    assert list(room_list_for_user(user=user)) == [c, b, a]


def test_room_list_for_user_searches_names(user: User) -> None:
    RoomFactory.create(name="Python")
    RoomFactory.create(name="rust")

    assert [r.name for r in room_list_for_user(user=user, search="yth")] == ["Python"]
    assert len(room_list_for_user(user=user, search="")) == 2


def test_room_get_for_user_is_none_for_a_hidden_room(user: User) -> None:
    hidden = RoomFactory.create(visibility="private")

    assert room_get_for_user(room_id=hidden.pk, user=user) is None
    assert room_get_for_user(room_id=hidden.pk, user=hidden.owner) is not None


def test_room_get_for_user_serializes_in_two_queries(
    room: Room, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    MessageFactory.create_batch(2, room=room)

    with django_assert_num_queries(2):
        found = room_get_for_user(room_id=room.pk, user=room.owner)
        assert found is not None
        data = RoomSerializer(found).data

    assert data["last_message"]["seq"] == 2
    assert data["unread_count"] == 2


def test_room_last_message_works_without_the_prefetch(room: Room) -> None:
    assert room_last_message(room=room) is None
    MessageFactory.create(room=room)
    last = MessageFactory.create(room=room)
    room.refresh_from_db()

    assert room_last_message(room=room) == last


def test_membership_list_for_room_orders_by_joining_and_names_the_owner(room: Room) -> None:
    late = MembershipFactory.create(room=room, joined_at=timezone.now() + timedelta(days=1))
    early = MembershipFactory.create(room=room, joined_at=timezone.now() - timedelta(days=1))

    members = list(membership_list_for_room(room=room))

    assert members[0].pk == early.pk
    assert members[-1].pk == late.pk
    assert [m.role for m in members] == ["member", "owner", "member"]
