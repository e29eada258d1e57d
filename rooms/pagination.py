import datetime

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

INVALID_CURSOR = "Invalid cursor: follow the next and previous links as given."


def _utc_position(position: str) -> str | None:
    """The position as DRF writes it (``str`` of a UTC datetime), or None if it is none."""
    try:
        moment = parse_datetime(position)
        if moment is None or moment.tzinfo is None:
            return None
        # In UTC, as the database returns it: PostgreSQL refuses offsets beyond 15:59,
        # and a conversion there or in the SQLite adapter would overflow at the ends of
        # the calendar (a 500 either way).
        return str(moment.astimezone(datetime.UTC))
    except (ValueError, OverflowError):
        return None


class DateTimeCursorPagination(CursorPagination):
    """DRF's cursor pagination over an ordering led by a datetime field.

    A cursor is opaque: clients only follow ``next`` and ``previous``. One that this
    class did not make is bad input (400; DRF says 404), and its position reaches the
    database only as an aware datetime in UTC.
    """

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        if cursor is None or cursor.position is None:
            return cursor
        position = _utc_position(cursor.position)
        if position is None:
            raise ValidationError({"cursor": [INVALID_CURSOR]})
        return cursor._replace(position=position)


class RoomCursorPagination(DateTimeCursorPagination):
    """Most recently active first; stable while rooms keep getting messages."""

    ordering = ("-last_activity_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100


class MemberCursorPagination(DateTimeCursorPagination):
    """First joined first."""

    ordering = ("joined_at", "id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
