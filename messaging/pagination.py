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


class MessageKeysetPagination(BasePagination):
    """Pages of at most ``limit`` messages (default 50, at most 100), as their payloads
    (``message_payloads``), not Message objects; ``next`` moves one position parameter
    past the page's last message. Subclasses say which parameters and which order."""

    default_limit = 50
    max_limit = 100
    next_url: str | None = None

    def limit_of(self, params: serializers.Serializer[Any]) -> int:
        return min(params.validated_data.get("limit", self.default_limit), self.max_limit)

    def page_of(
        self,
        page_query: "QuerySet[Any, Any]",
        request: Request,
        *,
        limit: int,
        next_param: str,
        key: str,
        drop_param: str | None = None,
    ) -> list[Any]:
        """One page of ``page_query``; ``next`` sets ``next_param`` to the last message's
        ``key`` (and drops ``drop_param``), or is null when this is all."""
        rows = message_payloads(page_query, limit=limit + 1)
        page = rows[:limit]
        self.next_url = None
        if len(rows) > limit:
            url = request.build_absolute_uri()
            if drop_param is not None:
                url = remove_query_param(url, drop_param)
            self.next_url = replace_query_param(url, next_param, page[-1][key])
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


class MessageSeqPagination(MessageKeysetPagination):
    """A room's history keyed by ``seq``: newest first, or oldest first after ``after``."""

    def paginate_queryset(
        self, queryset: "QuerySet[Any, Any] | Sequence[Any]", request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet)  # the view's messages
        params = PageParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        after = params.validated_data.get("after")
        before = params.validated_data.get("before")
        forward = after is not None
        return self.page_of(
            message_page_query(queryset, before=before, after=after),
            request,
            limit=self.limit_of(params),
            next_param="after" if forward else "before",
            drop_param="before" if forward else "after",
            key="seq",
        )

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


class MessageRevPagination(MessageKeysetPagination):
    """A room's changes after ``?after=<rev>``, in ``rev`` order, keyed by ``rev``."""

    def paginate_queryset(
        self, queryset: "QuerySet[Any, Any] | Sequence[Any]", request: Request, view: Any = None
    ) -> list[Any]:
        assert isinstance(queryset, QuerySet)  # the view's messages
        params = ChangesParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return self.page_of(
            message_changes_query(queryset, after=params.validated_data["after"]),
            request,
            limit=self.limit_of(params),
            next_param="after",
            key="rev",
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            _integer_param(
                "after", "Messages changed after this revision (default 0), in rev order."
            ),
            _integer_param("limit", "Page size: default 50, at most 100."),
        ]
