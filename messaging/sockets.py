"""The consumer's synchronous side: each function is one ``database_sync_to_async`` call.

They adapt socket needs to the services and selectors, so the consumer never builds a
queryset and every thread hop does all of its database work at once.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import FilteredRelation, OuterRef, Q, Subquery

from accounts.models import User
from accounts.serializers import user_brief, user_brief_of
from messaging import events
from messaging.events import ChangeFrame, HelloFrame
from messaging.models import Message
from messaging.selectors import message_changes_query, user_list_brief
from rooms.models import Membership, Room
from rooms.selectors import RoomForUser, room_get_for_user, room_get_visible, room_member_ids
from rooms.serializers import room_payload
from rooms.services import room_mark_read

GAP_FILL_LIMIT = 100


class RoomAccess(enum.Enum):
    MEMBER = "member"
    NOT_MEMBER = "not_member"  # a public room the user has not joined
    NOT_VISIBLE = "not_visible"  # no such room, or private and not the user's


def socket_room(*, room_id: int, user: User) -> tuple[RoomForUser | None, RoomAccess]:
    room = room_get_for_user(room_id=room_id, user=user)
    if room is None:
        return None, RoomAccess.NOT_VISIBLE
    if not room.is_member:
        return room, RoomAccess.NOT_MEMBER
    return room, RoomAccess.MEMBER


def socket_hello(*, room: RoomForUser, user: User, online: list[dict[str, Any]]) -> HelloFrame:
    return {
        "type": "hello",
        "room": room_payload(room),
        "user": user_brief(user),
        "online": online,
        "last_seq": room.room.last_seq,
        "last_rev": room.room.last_rev,
    }


def socket_open(*, room_id: int, user: User) -> tuple[RoomForUser | None, RoomAccess, list[int]]:
    """All that opening a room socket reads, in one thread hop: the room as ``user`` sees
    it, whether they may be in it, and (if they may) its members' ids, of whom presence
    says who is online."""
    room, access = socket_room(room_id=room_id, user=user)
    if room is None or access is not RoomAccess.MEMBER:
        return room, access, []
    return room, access, room_member_ids(room_id=room_id)


def socket_user_briefs(*, user_ids: list[int]) -> list[dict[str, Any]]:
    """Brief Users for ``online`` lists, in id order."""
    return [user_brief_of(*row) for row in user_list_brief(user_ids=user_ids)]


def socket_user_room_ids(*, user_id: int) -> list[int]:
    """The rooms whose members hear the user's presence."""
    return list(Membership.objects.filter(user_id=user_id).values_list("room_id", flat=True))


def socket_mark_read(*, room_id: int, user: User, seq: int) -> None:
    room_mark_read(room=Room(pk=room_id), user=user, seq=seq)


def socket_changes_after(*, room_id: int, after: int, known_seq: int) -> list[ChangeFrame]:
    """The room's changes after revision ``after``, as a socket that has every message
    up to ``known_seq`` delivers them: ``[rev, seq, frame]`` in ``rev`` order, as in a
    ``message.changes`` event.

    Each message comes once, in its current state, at its latest revision; one the
    socket has never seen is a ``message.new`` (a deleted one too: its tombstone), the
    others a ``message.updated`` or ``message.deleted``.
    """
    messages = Message.objects.filter(room_id=room_id).select_related("author")
    changed = message_changes_query(messages, after=after)[:GAP_FILL_LIMIT]
    changes: list[ChangeFrame] = []
    for message in changed:
        if message.seq > known_seq:
            changes.append([message.rev, message.seq, events.message_new_text(message)])
        elif message.is_deleted:
            changes.append([message.rev, 0, events.message_deleted_text(message)])
        else:
            changes.append([message.rev, 0, events.message_updated_text(message)])
    return changes


@dataclass(frozen=True)
class SocketAccessCheck:
    """Which open sockets' users may still be in their rooms, read in one query.

    Revocation does not rest on one broadcast (``member.removed``, ``room.deleted``,
    ``user.signed_out``): a lost one is caught here.
    """

    rooms: frozenset[int]  # the rooms that still exist
    members: frozenset[tuple[int, int]]  # (room_id, user_id): still a member, and active
    inactive: frozenset[int]  # users still members somewhere, but deactivated


def socket_access_check(*, sockets: Iterable[tuple[int, int]]) -> SocketAccessCheck:
    """Re-checks ``(room_id, user_id)`` pairs, those of every open socket of a process.

    One query whatever their number: the rooms, each joined to the memberships of just
    these users and to those users' ``is_active``.
    """
    pairs = set(sockets)
    users = {user_id for _, user_id in pairs}
    is_active = User.objects.filter(pk=OuterRef("ours__user_id")).values("is_active")[:1]
    rows = (
        Room.objects.filter(pk__in={room_id for room_id, _ in pairs})
        .annotate(ours=FilteredRelation("memberships", condition=Q(memberships__user__in=users)))
        .annotate(is_active=Subquery(is_active))
        .values_list("pk", "ours__user_id", "is_active")
    )
    rooms: set[int] = set()
    members: set[tuple[int, int]] = set()
    inactive: set[int] = set()
    for room_id, user_id, is_active in rows:
        rooms.add(room_id)
        if user_id is None or (room_id, user_id) not in pairs:
            continue
        if is_active:
            members.add((room_id, user_id))
        else:
            inactive.add(user_id)
    return SocketAccessCheck(frozenset(rooms), frozenset(members), frozenset(inactive))


def socket_rooms_last_rev(*, room_ids: Iterable[int]) -> dict[int, int]:
    """The newest ``rev`` of each of the rooms that still exist, in one query."""
    return dict(Room.objects.filter(pk__in=set(room_ids)).values_list("pk", "last_rev"))


# The user socket (``/ws/``) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomPosition:
    """Where one of a user's rooms stands, as a user socket's ``hello`` lists it."""

    room_id: int
    last_seq: int
    last_rev: int
    last_read_seq: int

    def hello_entry(self) -> dict[str, int]:
        return {
            "room": self.room_id,
            "last_seq": self.last_seq,
            "last_rev": self.last_rev,
            "unread_count": max(0, self.last_seq - self.last_read_seq),
            # Mentions come with the conversations issue (#15): none exist yet.
            "mention_count": 0,
        }


def socket_user_rooms(*, user_id: int) -> list[RoomPosition]:
    """Every room the user is a member of, most recently active first: one query."""
    rows = (
        Membership.objects.filter(user_id=user_id)
        .order_by("-room__last_activity_at", "-room_id")
        .values_list("room_id", "room__last_seq", "room__last_rev", "last_read_seq")
    )
    return [RoomPosition(*row) for row in rows]


def socket_watch(*, room_id: int, user: User) -> tuple[RoomForUser | None, list[int]]:
    """A room a user socket watches, as the user sees it (None if they may not), and its
    members' ids."""
    room = room_get_for_user(room_id=room_id, user=user)
    if room is None:
        return None, []
    return room, room_member_ids(room_id=room_id)


def socket_room_visible(*, room_id: int, user: User) -> bool:
    """Whether a room a user socket named exists for the user (``forbidden`` rather than
    ``not_found``)."""
    return room_get_visible(room_id=room_id, user=user) is not None


@dataclass(frozen=True)
class UserSocketCheck:
    """What the user sockets of a process should hold, read at once (a lost
    ``room.joined``, ``room.left``, ``room.deleted`` or ``user.signed_out`` is caught
    here)."""

    active: frozenset[int]  # of the users asked about, those still active
    memberships: dict[int, frozenset[int]]  # user -> the rooms they are a member of
    rooms: frozenset[int]  # of the rooms asked about, those that still exist


def socket_user_check(*, user_ids: Iterable[int], room_ids: Iterable[int]) -> UserSocketCheck:
    """Three queries whatever the number of sockets."""
    users = set(user_ids)
    active = User.objects.filter(pk__in=users, is_active=True).values_list("pk", flat=True)
    memberships: dict[int, set[int]] = {user_id: set() for user_id in users}
    rows = Membership.objects.filter(user_id__in=users).values_list("user_id", "room_id")
    for user_id, room_id in rows:
        memberships[user_id].add(room_id)
    rooms = Room.objects.filter(pk__in=set(room_ids)).values_list("pk", flat=True)
    return UserSocketCheck(
        active=frozenset(active),
        memberships={user_id: frozenset(ids) for user_id, ids in memberships.items()},
        rooms=frozenset(rooms),
    )


def socket_room_payloads(*, user: User, room_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The rooms as ``user`` sees them (``room.joined`` that a lost event owed a user
    socket; rare, so a few queries a room)."""
    payloads = []
    for room_id in room_ids:
        room = room_get_for_user(room_id=room_id, user=user)
        if room is not None and room.is_member:
            payloads.append(room_payload(room))
    return payloads
