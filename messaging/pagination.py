"""Keyset pagination of a room's history by ``seq``, and of its changes by ``rev``.

Never offset: a page costs one index range scan at any depth, and messages arriving
while a client pages never shift or repeat what it sees. ``?before=<seq>`` (or no
position) walks newest first; ``?after=<seq>`` walks oldest first, for catching up.
``next`` continues in the same direction; ``previous`` is always null, since a client
that wants newer messages asks ``?after=`` with the newest ``seq`` it has.
"""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from messaging.selectors import message_changes_query, message_page_query
from messaging.serializers import MAX_SEQ, message_payloads


def _integer_param(name: str, description: str) -> dict[str, Any]:
    """An optional integer query parameter, as the schema shows it."""
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": {"type": "integer"},
    }


class PageParamsSerializer(serializers.Serializer[Any]):
    """The query parameters of a history page."""

    before = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    after = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    limit = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError("Give either before or after, not both.")
        return attrs


class MessageSeqPagination(BasePagination):
    """Pages of at most ``limit`` messages (default 50, at most 100), keyed by ``seq``."""

    default_limit = 50
    max_limit = 100

    def paginate_queryset(
        self, queryset: "QuerySet[Any, Any] | Sequence[Any]", request: Request, view: Any = None
    ) -> list[Any]:
        """The page, as the messages' payloads (``message_payloads``), not Message objects."""
        assert isinstance(queryset, QuerySet)  # the view's messages
        params = PageParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        limit = min(params.validated_data.get("limit", self.default_limit), self.max_limit)
        after = params.validated_data.get("after")
        before = params.validated_data.get("before")
        direction = "after" if after is not None else "before"
        page_query = message_page_query(queryset, before=before, after=after)
        rows = message_payloads(page_query, limit=limit + 1)
        page = rows[:limit]
        self.next_url = None
        if len(rows) > limit:
            other = "after" if direction == "before" else "before"
            url = remove_query_param(request.build_absolute_uri(), other)
            url = replace_query_param(url, direction, page[-1]["seq"])
            self.next_url = url
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.next_url, "previous": None, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            _integer_param("before", "Messages older than this seq, newest first."),
            _integer_param("after", "Messages newer than this seq, oldest first (catch-up)."),
            _integer_param("limit", "Page size: default 50, at most 100."),
        ]


class ChangesParamsSerializer(serializers.Serializer[Any]):
    """The query parameters of a page of changes."""

    after = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_SEQ)
    limit = serializers.IntegerField(required=False, min_value=1)


class MessageRevPagination(MessageSeqPagination):
    """Pages of a room's changes after ``?after=<rev>``, in ``rev`` order, keyed by ``rev``."""

    def paginate_queryset(
        self, queryset: "QuerySet[Any, Any] | Sequence[Any]", request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet)  # the view's messages
        params = ChangesParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        limit = min(params.validated_data.get("limit", self.default_limit), self.max_limit)
        page_query = message_changes_query(queryset, after=params.validated_data["after"])
        rows = message_payloads(page_query, limit=limit + 1)
        page = rows[:limit]
        self.next_url = None
        if len(rows) > limit:
            url = request.build_absolute_uri()
            self.next_url = replace_query_param(url, "after", page[-1]["rev"])
        return page

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            _integer_param(
                "after", "Messages changed after this revision (default 0), in rev order."
            ),
            _integer_param("limit", "Page size: default 50, at most 100."),
        ]
