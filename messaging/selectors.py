"""Reads about messages."""

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from accounts.models import User
from messaging.models import Message
from messaging.serializers import message_payloads_of
from rooms.models import Room
from rooms.selectors import room_for_user, room_list_for_user, room_list_visible
from rooms.serializers import room_payload


def message_list_for_room(*, room: Room) -> QuerySet[Message]:
    return Message.objects.filter(room=room).select_related("author")


def message_page_query(
    messages: QuerySet[Message], *, before: int | None = None, after: int | None = None
) -> QuerySet[Message]:
    """``messages`` in keyset order by ``seq``: newest first (below ``before``, if given),
    or oldest first above ``after``. Walks the (room, seq) unique index, so a page costs
    the same at any depth.
    """
    if after is not None:
        return messages.filter(seq__gt=after).order_by("seq")
    if before is not None:
        messages = messages.filter(seq__lt=before)
    return messages.order_by("-seq")


def message_changes_query(messages: QuerySet[Message], *, after: int) -> QuerySet[Message]:
    """``messages`` changed after revision ``after``, in ``rev`` order: each once, at its
    latest revision. Walks the (room, rev) unique index, so a page costs the same at any
    depth. ``changes/?after=`` and the socket's gap fill both page this way."""
    return messages.filter(rev__gt=after).order_by("rev")


def message_get_for_user(*, message_id: int, user: User) -> Message | None:
    """The message, if ``user`` may see its room (public, or a member of it)."""
    return (
        Message.objects.select_related("author", "room")
        .filter(pk=message_id, room__in=room_list_visible(user=user))
        .first()
    )


def user_list_brief(*, user_ids: list[int]) -> list[tuple[int, str, str]]:
    """``(id, username, display_name)`` of the users, by username: rows, not models."""
    users = User.objects.filter(pk__in=user_ids).order_by("username")
    return list(users.values_list("pk", "username", "display_name"))


# Rooms per query of ``message_changes_for_rooms``: the filter is one OR of a condition a
# room, and SQLite refuses an expression deeper than 1,000 (SQLITE_MAX_EXPR_DEPTH).
CHANGES_ROOMS_PER_QUERY = 250


def message_changes_for_rooms(after: dict[int, int], *, per_room: int) -> list[QuerySet[Message]]:
    """For each room of ``after`` (room id -> revision), its first ``per_room`` messages
    changed after that revision, in (room, ``rev``) order: a few queries for any number of
    rooms (one a ``CHANGES_ROOMS_PER_QUERY``), not one a room.

    Each room's condition is a range of the (room, rev) unique index, and a window
    (``ROW_NUMBER() OVER (PARTITION BY room ORDER BY rev)``) keeps a room's first few.
    """
    items = sorted(after.items())
    queries: list[QuerySet[Message]] = []
    for start in range(0, len(items), CHANGES_ROOMS_PER_QUERY):
        condition = Q()
        for room_id, rev in items[start : start + CHANGES_ROOMS_PER_QUERY]:
            condition |= Q(room_id=room_id, rev__gt=rev)
        queries.append(
            Message.objects.filter(condition)
            .annotate(
                position=Window(RowNumber(), partition_by=[F("room_id")], order_by=F("rev").asc())
            )
            .filter(position__lte=per_room)
            .order_by("room_id", "rev")
        )
    return queries


# Changes a sync answers per room, at most (API.md: Sync); ``next`` goes on from there.
SYNC_CHANGES_PER_ROOM = 100


@dataclass(frozen=True)
class SyncRoom:
    room: dict[str, Any]  # the Room payload
    changes: list[dict[str, Any]]  # Message payloads, in rev order
    more_after: int | None  # the rev that ``changes/?after=`` goes on from, if more wait


@dataclass(frozen=True)
class Sync:
    rooms: list[SyncRoom]
    left: list[int]


def sync_for_user(*, user: User, known: dict[int, int]) -> Sync:
    """Every room ``user`` is a member of (most recently active first), with the changes
    above the revision the client holds of it (``known``), and the rooms of ``known`` the
    user is not a member of now. A constant number of queries whatever the number of
    rooms: the rooms (and their last messages), and the changes (a query a
    ``CHANGES_ROOMS_PER_QUERY`` rooms named)."""
    rooms = list(room_list_for_user(user=user, joined=True))
    member_of = {room.pk for room in rooms}
    after = {room_id: rev for room_id, rev in known.items() if room_id in member_of}
    changes: dict[int, list[dict[str, Any]]] = {}
    for query in message_changes_for_rooms(after, per_room=SYNC_CHANGES_PER_ROOM + 1):
        for payload in message_payloads_of(query):
            changes.setdefault(payload["room"], []).append(payload)
    answer = []
    for room in rooms:
        room_changes = changes.get(room.pk, [])
        more_after = None
        if len(room_changes) > SYNC_CHANGES_PER_ROOM:
            room_changes = room_changes[:SYNC_CHANGES_PER_ROOM]
            more_after = room_changes[-1]["rev"]
        answer.append(SyncRoom(room_payload(room_for_user(room)), room_changes, more_after))
    left = sorted(room_id for room_id in known if room_id not in member_of)
    return Sync(rooms=answer, left=left)
