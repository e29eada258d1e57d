"""Reads about rooms. Visibility lives here and nowhere else.

``room_list_for_user`` and ``room_get_for_user`` return rooms carrying every per-caller
value that ``RoomSerializer`` shows (``member_count``, ``is_member``, ``role``,
``unread_count`` and the last message), fetched in a constant number of queries
whatever the number of rooms: for a list, one for the rooms and their counts, one for
the last messages of the rooms actually loaded; for one room, three small ones.
"""

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
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import User
from accounts.validators import fold_case
from messaging.models import Message
from rooms.models import Membership, Room

# The attribute that the last-message prefetch fills: a list of zero or one Message.
LAST_MESSAGES_ATTR = "last_messages"


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


def _last_message_prefetch() -> "Prefetch[Message]":
    # Runs once for all the rooms loaded: the messages whose seq is their room's
    # last_seq, found through the (room, seq) unique index.
    return Prefetch(
        "messages",
        queryset=Message.objects.filter(seq=F("room__last_seq")).select_related("author"),
        to_attr=LAST_MESSAGES_ATTR,
    )


def _room_list_annotated(*, user: User) -> QuerySet[Room]:
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
        .prefetch_related(_last_message_prefetch())
    )


def room_list_for_user(
    *, user: User, joined: bool = False, search: str | None = None
) -> QuerySet[Room]:
    """Rooms ``user`` may see, most recently active first, ready for ``RoomSerializer``.

    ``joined`` keeps only the rooms ``user`` is a member of; ``search`` keeps the rooms
    whose name contains it, without regard to case.
    """
    rooms = _room_list_annotated(user=user)
    if joined:
        rooms = rooms.filter(is_member=True)
    if search:
        rooms = rooms.filter(name__icontains=search)
    return rooms.order_by("-last_activity_at", "-id")


def room_get_for_user(*, room_id: int, user: User) -> Room | None:
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
    room.is_member = last_read_seq is not None
    if not room.is_member and room.visibility != Room.Visibility.PUBLIC:
        return None
    room.member_count = memberships["count"]
    room.unread_count = room.last_seq - last_read_seq if room.is_member else None
    room.role = None
    if room.is_member:
        room.role = "owner" if room.owner_id == user.pk else "member"
    last = Message.objects.select_related("author").filter(room_id=room_id, seq=room.last_seq)
    setattr(room, LAST_MESSAGES_ATTR, list(last) if room.last_seq else [])
    return room


def room_last_message(*, room: Room) -> Message | None:
    """The newest message of ``room``, from the prefetch when the room came with one."""
    prefetched: list[Message] | None = getattr(room, LAST_MESSAGES_ATTR, None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    if room.last_seq == 0:
        return None
    return Message.objects.select_related("author").filter(room=room, seq=room.last_seq).first()


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
