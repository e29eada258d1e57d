"""Keyset pagination of a room's history by ``seq``.

Never offset: a page costs one index range scan at any depth, and messages arriving
while a client pages never shift or repeat what it sees. ``?before=<seq>`` (or no
position) walks newest first; ``?after=<seq>`` walks oldest first, for catching up.
``next`` continues in the same direction; ``previous`` is always null, since a client
that wants newer messages asks ``?after=`` with the newest ``seq`` it has.
"""

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from messaging.models import Message
from messaging.selectors import message_page_query
from messaging.serializers import MAX_SEQ, message_payloads


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
        self, queryset: QuerySet[Message], request: Request, view: Any = None
    ) -> list[dict[str, Any]]:
        """The page, as the messages' payloads (``message_payloads``), not Message objects."""
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
        def param(name: str, description: str) -> dict[str, Any]:
            return {
                "name": name,
                "required": False,
                "in": "query",
                "description": description,
                "schema": {"type": "integer"},
            }

        return [
            param("before", "Messages older than this seq, newest first."),
            param("after", "Messages newer than this seq, oldest first (catch-up)."),
            param("limit", "Page size: default 50, at most 100."),
        ]
