"""Reads about rooms. Visibility lives here and nowhere else.

A room as one user sees it is a ``RoomForUser``: the room with every per-caller value
that ``RoomSerializer`` shows (``member_count``, ``is_member``, ``role``,
``unread_count``; the last message rides on the room, ``rooms.last_message``), fetched in
a constant number of queries whatever the number of rooms: for a list
(``room_list_for_user``, annotated), one for the rooms and their counts, one for the last
messages of the rooms actually loaded; for one room (``room_get_for_user``), three small
ones.
"""

from dataclasses import dataclass
from typing import TypedDict

from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django_stubs_ext import WithAnnotations

from accounts.models import User
from common.text import fold_case
from rooms.last_message import attach_last_message, last_message_prefetch
from rooms.models import Membership, Room


@dataclass(frozen=True, slots=True)
class RoomForUser:
    """One room as one user sees it."""

    room: Room
    member_count: int
    is_member: bool
    role: str | None  # "owner", "member", or None for a non-member
    unread_count: int | None  # None for a non-member


def room_for_user(room: Room) -> RoomForUser:
    """A room of ``room_list_for_user``'s queryset, whose annotations hold these values."""
    annotated = vars(room)
    return RoomForUser(
        room=room,
        member_count=annotated["member_count"],
        is_member=annotated["is_member"],
        role=annotated["role"],
        unread_count=annotated["unread_count"],
    )


def room_list_visible(*, user: User) -> QuerySet[Room]:
    """Every public room, and the private rooms ``user`` is a member of."""
    is_member = Exists(Membership.objects.filter(room=OuterRef("pk"), user=user))
    return Room.objects.filter(Q(visibility=Room.Visibility.PUBLIC) | is_member)


def room_name_taken(*, name: str, exclude_pk: int | None = None) -> bool:
    """Whether another public room has this name under full Unicode case folding (the
    database constraint has the final word). Private rooms never count: they may share
    a name, and a clash with one would tell that it exists."""
    rooms = Room.objects.filter(name_folded=fold_case(name), visibility=Room.Visibility.PUBLIC)
    if exclude_pk is not None:
        rooms = rooms.exclude(pk=exclude_pk)
    return rooms.exists()


def room_get_visible(*, room_id: int, user: User) -> Room | None:
    return room_list_visible(user=user).filter(pk=room_id).first()


def membership_get(*, room_id: int, user_id: int) -> Membership | None:
    return Membership.objects.filter(room_id=room_id, user_id=user_id).first()


class RoomAnnotations(TypedDict):
    """What ``room_list_for_user`` annotates each room with (``room_for_user`` reads it)."""

    is_member: bool
    member_count: int
    unread_count: int | None
    role: str | None


def _room_list_annotated(*, user: User) -> "QuerySet[WithAnnotations[Room, RoomAnnotations]]":
    own_membership = Membership.objects.filter(room=OuterRef("pk"), user=user)
    member_count = (
        Membership.objects.filter(room=OuterRef("pk"))
        .order_by()
        .values("room")
        .annotate(count=Count("*"))
        .values("count")
    )
    return (
        Room.objects.annotate(
            is_member=Exists(own_membership),
            member_count=Coalesce(Subquery(member_count, output_field=IntegerField()), Value(0)),
            # NULL for a non-member: the subquery finds no row and NULL - x is NULL.
            unread_count=F("last_seq")
            - Subquery(own_membership.values("last_read_seq")[:1], output_field=BigIntegerField()),
            role=Case(
                When(is_member=True, owner_id=user.pk, then=Value("owner")),
                When(is_member=True, then=Value("member")),
                default=None,
                output_field=CharField(),
            ),
        )
        .filter(Q(visibility=Room.Visibility.PUBLIC) | Q(is_member=True))
        .select_related("owner")
        .prefetch_related(last_message_prefetch())
    )


def room_list_for_user(
    *, user: User, joined: bool = False, search: str | None = None
) -> "QuerySet[WithAnnotations[Room, RoomAnnotations]]":
    """Rooms ``user`` may see, most recently active first, annotated for ``room_for_user``.

    ``joined`` keeps only the rooms ``user`` is a member of; ``search`` keeps the rooms
    whose name contains it, without regard to case.
    """
    rooms = _room_list_annotated(user=user)
    if joined:
        rooms = rooms.filter(is_member=True)
    if search:
        rooms = rooms.filter(name__icontains=search)
    return rooms.order_by("-last_activity_at", "-id")


def room_get_for_user(*, room_id: int, user: User) -> RoomForUser | None:
    """One room as ``user`` sees it (for ``RoomSerializer``), or None if they may not see it.

    The REST views and every WebSocket's ``hello`` build their Room from this. Three
    small queries by key (the room with its owner, the memberships' count and the
    caller's read marker, the last message), not ``room_list_for_user``'s annotated
    query, which costs twice as much to build as these three together: every socket
    connect pays for it. The values are the same (a test holds them equal).
    """
    room = Room.objects.select_related("owner").filter(pk=room_id).first()
    if room is None:
        return None
    memberships = Membership.objects.filter(room_id=room_id).aggregate(
        count=Count("*"), last_read_seq=Max("last_read_seq", filter=Q(user=user))
    )
    last_read_seq = memberships["last_read_seq"]
    is_member = last_read_seq is not None
    if not is_member and room.visibility != Room.Visibility.PUBLIC:
        return None
    attach_last_message(room)
    return RoomForUser(
        room=room,
        member_count=memberships["count"],
        is_member=is_member,
        role=("owner" if room.owner_id == user.pk else "member") if is_member else None,
        unread_count=room.last_seq - last_read_seq if is_member else None,
    )


def membership_list_for_room(*, room: Room) -> QuerySet[Membership]:
    """The members of ``room``, first joined first, each with its ``role``."""
    return (
        Membership.objects.filter(room=room)
        .select_related("user")
        .annotate(
            role=Case(
                When(user_id=room.owner_id, then=Value("owner")),
                default=Value("member"),
                output_field=CharField(),
            )
        )
        .order_by("joined_at", "id")
    )


def room_member_ids(*, room_id: int) -> list[int]:
    """The ids of the room's members (presence says which of them are online)."""
    return list(Membership.objects.filter(room_id=room_id).values_list("user_id", flat=True))
