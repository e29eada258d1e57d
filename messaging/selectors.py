"""Reads about messages."""

from django.db.models import QuerySet

from accounts.models import User
from messaging.models import Message
from rooms.models import Room
from rooms.selectors import room_list_visible


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
