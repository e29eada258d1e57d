import datetime
from base64 import b64encode
from typing import Any
from urllib.parse import urlencode

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


def _example_link(path: str, cursor: str) -> str:
    """A link as DRF writes it (the cursor is base64 of a query string), for the schema."""
    encoded = b64encode(cursor.encode("ascii")).decode("ascii")
    return f"https://chat.example.com{path}?{urlencode({'cursor': encoded})}"


class DateTimeCursorPagination(CursorPagination):
    """DRF's cursor pagination over an ordering led by a datetime field.

    A cursor is opaque: clients only follow ``next`` and ``previous``. One that this
    class did not make is bad input (400; DRF says 404), and its position reaches the
    database only as an aware datetime in UTC.
    """

    # The path of the list, for the schema's examples of ``next`` and ``previous``
    # (DRF's own point at an ``/accounts/`` list, with a stray quote in one).
    example_path = "/api/v1/"

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response_schema = super().get_paginated_response_schema(schema)
        position = "2026-11-24 09:30:00.123456+00:00"
        links = response_schema["properties"]
        links["next"]["example"] = _example_link(self.example_path, f"p={position}")
        links["previous"]["example"] = _example_link(self.example_path, f"r=1&p={position}")
        return response_schema

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        if cursor is None or cursor.position is None:
            return cursor
        position = _utc_position(str(cursor.position))
        if position is None:
            raise ValidationError({"cursor": [INVALID_CURSOR]})
        # DRF's stubs type a cursor's position as an int; it is the text of the ordering
        # field, a time here.
        return cursor._replace(position=position)  # type: ignore[arg-type]


class RoomCursorPagination(DateTimeCursorPagination):
    """Most recently active first; stable while rooms keep getting messages."""

    ordering = ("-last_activity_at", "-id")
    example_path = "/api/v1/rooms/"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100


class MemberCursorPagination(DateTimeCursorPagination):
    """First joined first."""

    ordering = ("joined_at", "id")
    example_path = "/api/v1/rooms/1/members/"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
