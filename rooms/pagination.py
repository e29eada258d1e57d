from rest_framework.pagination import CursorPagination


class RoomCursorPagination(CursorPagination):
    """Most recently active first; stable while rooms keep getting messages."""

    ordering = ("-last_activity_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100


class MemberCursorPagination(CursorPagination):
    """First joined first."""

    ordering = ("joined_at", "id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
