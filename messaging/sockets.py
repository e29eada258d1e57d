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
from messaging.selectors import message_list_page, user_list_brief
from messaging.serializers import message_payload
from messaging.services import MessageCreateResult, MessageDraft, message_create_many
from rooms.models import Room
from rooms.selectors import room_get_for_user
from rooms.serializers import room_payload
from rooms.services import room_mark_read

GAP_FILL_LIMIT = 100


class RoomAccess(enum.Enum):
    MEMBER = "member"
    NOT_MEMBER = "not_member"  # a public room the user has not joined
    NOT_VISIBLE = "not_visible"  # no such room, or private and not the user's


def socket_room(*, room_id: int, user: User) -> tuple[Room | None, RoomAccess]:
    room = room_get_for_user(room_id=room_id, user=user)
    if room is None:
        return None, RoomAccess.NOT_VISIBLE
    if not room.is_member:
        return room, RoomAccess.NOT_MEMBER
    return room, RoomAccess.MEMBER


def socket_hello(*, room: Room, user: User, online_ids: list[int]) -> dict[str, Any]:
    return {
        "type": "hello",
        "room": room_payload(room),
        "user": user_brief(user),
        "online": [user_brief_of(*row) for row in user_list_brief(user_ids=online_ids)],
        "last_seq": room.last_seq,
    }


def socket_open(
    *, room_id: int, user: User, online_ids: list[int]
) -> tuple[Room | None, RoomAccess, dict[str, Any] | None]:
    """All that opening a socket reads, in one thread hop: the room as ``user`` sees it,
    whether they may be in it, and (if they may) the ``hello`` frame."""
    room, access = socket_room(room_id=room_id, user=user)
    if room is None or access is not RoomAccess.MEMBER:
        return room, access, None
    return room, access, socket_hello(room=room, user=user, online_ids=online_ids)


Acks = list[dict[str, Any] | Exception]
Broadcasts = list[tuple[str, dict[str, Any]]]


def socket_send_messages(drafts: list[MessageDraft]) -> tuple[Acks, Broadcasts]:
    """Stores a batch of sends (``messaging.writer``).

    Returns each draft's ack (the message as stored, or the exception that refused
    it), and the ``message.new`` events of the messages it created, which the caller
    sends to the channel layer: the transaction has committed when this returns.
    """
    outcomes = message_create_many(drafts, broadcast=False)
    acks: Acks = [o if isinstance(o, Exception) else message_payload(o.message) for o in outcomes]
    created = [o.message for o in outcomes if isinstance(o, MessageCreateResult) and o.created]
    return acks, events.message_new_events(created)


def socket_mark_read(*, room_id: int, user: User, seq: int) -> None:
    room_mark_read(room=Room(pk=room_id), user=user, seq=seq)


def socket_messages_after(*, room_id: int, after: int) -> list[tuple[int, str]]:
    """Stored messages after ``after``, each as its encoded ``message.new`` frame."""
    page = message_list_page(room=Room(pk=room_id), after=after, limit=GAP_FILL_LIMIT)
    return [
        (
            message.seq,
            events.encode_frame({"type": "message.new", "message": message_payload(message)}),
        )
        for message in page
    ]


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


def socket_rooms_last_seq(*, room_ids: Iterable[int]) -> dict[int, int]:
    """The newest ``seq`` of each of the rooms that still exist, in one query."""
    return dict(Room.objects.filter(pk__in=set(room_ids)).values_list("pk", "last_seq"))
