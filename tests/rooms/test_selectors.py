from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import User
from rooms.last_message import room_last_message
from rooms.models import Membership, Room
from rooms.selectors import membership_list_for_room, room_get_for_user, room_list_for_user
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


def test_room_get_for_user_serializes_in_three_queries(
    room: Room, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    MessageFactory.create_batch(2, room=room)

    with django_assert_num_queries(3):
        found = room_get_for_user(room_id=room.pk, user=room.owner)
        assert found is not None
        data = RoomSerializer(found).data

    assert data["last_message"]["seq"] == 2
    assert data["unread_count"] == 2


@pytest.mark.parametrize("visibility", ["public", "private"])
@pytest.mark.parametrize("messages", [0, 3])
def test_one_room_reads_as_it_does_in_the_list(visibility: str, messages: int) -> None:
    """``room_get_for_user`` (three small queries) and the list's annotated query agree."""
    room = RoomFactory.create(visibility=visibility)
    MessageFactory.create_batch(messages, room=room)
    member = UserFactory.create()
    Membership.objects.create(room=room, user=member, last_read_seq=min(messages, 1))
    MembershipFactory.create(room=RoomFactory.create(), user=member)  # another room's
    outsider = UserFactory.create()

    for user in (room.owner, member, outsider):
        listed = room_list_for_user(user=user).filter(pk=room.pk).first()
        alone = room_get_for_user(room_id=room.pk, user=user)
        if listed is None:
            assert (visibility, user) == ("private", outsider)
            assert alone is None
        else:
            assert alone is not None
            assert RoomSerializer(alone).data == RoomSerializer(listed).data
            expected = "owner" if user == room.owner else "member" if user == member else None
            assert RoomSerializer(alone).data["role"] == expected


def test_room_payload_is_the_serializer_output(room: Room, other_user: User) -> None:
    from rest_framework import serializers

    MessageFactory.create(room=room, client_id="c1")
    Membership.objects.create(room=room, user=other_user)
    for user in (room.owner, other_user, UserFactory.create()):
        found = room_get_for_user(room_id=room.pk, user=user)
        # The declared fields read the room's attributes: the list's annotated room.
        annotated = room_list_for_user(user=user).get(pk=room.pk)
        declared = serializers.Serializer.to_representation(RoomSerializer(), annotated)
        assert RoomSerializer(found).data == dict(declared)
        assert list(RoomSerializer(found).data) == list(declared)


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
