"""HTTP for rooms and their members: find the room through the visibility selectors,
check the permission, validate the input, call the service, answer.

A private room the caller may not see is a 404 on every route (its existence does not
leak); a room the caller sees but may not change is a 403.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.serializers import ErrorSerializer
from rooms.models import Membership, Room
from rooms.pagination import MemberCursorPagination, RoomCursorPagination
from rooms.permissions import IsRoomMember, IsRoomOwner, IsRoomOwnerOrSelf
from rooms.selectors import (
    membership_list_for_room,
    room_get_for_user,
    room_get_visible,
    room_list_for_user,
)
from rooms.serializers import (
    MemberAddSerializer,
    MemberSerializer,
    ReadMarkerSerializer,
    RoomInputSerializer,
    RoomListQuerySerializer,
    RoomSerializer,
    room_payload,
)
from rooms.services import (
    membership_add,
    membership_remove,
    room_create,
    room_delete,
    room_join,
    room_leave,
    room_mark_read,
    room_update,
)

MAX_ID = 2**63 - 1  # ids are signed 64-bit integers

BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: field errors (`{"name": ["..."]}`) or `{"detail": "..."}`.',
)
FORBIDDEN = OpenApiResponse(
    ErrorSerializer, description="The caller can see the room but may not do this."
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer,
    description="No such room, or a private room the caller may not see.",
)
NO_CONTENT = OpenApiResponse(description="Done; no body.")


def request_user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsAuthenticated has let only real users through
    return user


def _id_or_404(value: str) -> int:
    """An id from the URL; anything that cannot be one (``abc``, 2**70) names nothing."""
    try:
        number = int(value)
    except ValueError:
        raise NotFound from None
    if not 0 < number <= MAX_ID:
        raise NotFound
    return number


def room_data(*, room_id: int, user: User) -> dict[str, Any]:
    room = room_get_for_user(room_id=room_id, user=user)
    if room is None:  # deleted or hidden by a concurrent request
        raise NotFound
    return room_payload(room)


@extend_schema(tags=["rooms"])
@extend_schema_view(
    list=extend_schema(
        summary="Rooms the caller can see, most recently active first",
        parameters=[RoomListQuerySerializer],
        responses={200: RoomSerializer(many=True), 400: BAD_REQUEST},
    ),
    retrieve=extend_schema(summary="One room", responses={200: RoomSerializer, 404: NOT_FOUND}),
    destroy=extend_schema(
        summary="Delete a room with its messages (owner)",
        description="Live sockets in the room get `room.deleted` and close with 4404.",
        responses={204: NO_CONTENT, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class RoomViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Room],
):
    """Rooms: anyone lists, opens and joins what they can see; the owner changes and deletes."""

    queryset = Room.objects.all()  # for the schema; requests go through get_queryset
    serializer_class = RoomSerializer
    pagination_class = RoomCursorPagination
    lookup_url_kwarg = "room_id"  # as in every path under a room (API schema, one name)

    def get_permissions(self) -> list[BasePermission]:
        if self.action in ("partial_update", "destroy"):
            return [IsAuthenticated(), IsRoomOwner()]
        if self.action == "read":
            return [IsAuthenticated(), IsRoomMember()]
        return [IsAuthenticated()]

    def get_queryset(self) -> QuerySet[Room]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Room.objects.none()
        user = request_user(self.request)
        if self.action == "list":
            query = RoomListQuerySerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            return room_list_for_user(user=user, **query.validated_data)
        return room_list_for_user(user=user)

    @extend_schema(
        summary="Create a room; the caller becomes its owner and first member",
        request=RoomInputSerializer,
        responses={201: RoomSerializer, 400: BAD_REQUEST},
    )
    def create(self, request: Request) -> Response:
        user = request_user(request)
        serializer = RoomInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        room = room_create(owner=user, **serializer.validated_data)
        return Response(room_data(room_id=room.pk, user=user), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a room's name, topic or visibility (owner)",
        description="Live sockets in the room get `room.updated`.",
        request=RoomInputSerializer,
        responses={
            200: RoomSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
            429: OpenApiResponse(description="Changing the room too fast; see Retry-After"),
        },
    )
    def partial_update(self, request: Request, room_id: str) -> Response:
        user = request_user(request)
        room = self.get_object()
        serializer = RoomInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        room_update(room=room, by=user, **serializer.validated_data)
        return Response(room_data(room_id=room.pk, user=user))

    def perform_destroy(self, instance: Room) -> None:
        room_delete(room=instance)

    @extend_schema(
        summary="Join a public room",
        description="Joining a room the caller is already in changes nothing and answers 200.",
        request=None,
        responses={200: RoomSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def join(self, request: Request, room_id: str) -> Response:
        user = request_user(request)
        room = self.get_object()
        room_join(room=room, user=user)
        return Response(room_data(room_id=room.pk, user=user))

    @extend_schema(
        summary="Leave a room",
        description="The owner cannot leave (400: delete the room instead); "
        "someone who is not a member gets 400 too.",
        request=None,
        responses={204: NO_CONTENT, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def leave(self, request: Request, room_id: str) -> Response:
        room_leave(room=self.get_object(), user=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Move the caller's read marker forward (member)",
        description="A seq beyond the newest message is clamped to it; a seq behind the "
        "marker changes nothing.",
        request=ReadMarkerSerializer,
        responses={204: NO_CONTENT, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def read(self, request: Request, room_id: str) -> Response:
        room = self.get_object()
        serializer = ReadMarkerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        room_mark_read(room=room, user=request_user(request), seq=serializer.validated_data["seq"])
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["members"])
@extend_schema_view(
    list=extend_schema(
        summary="Members of a room, first joined first",
        responses={200: MemberSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND},
    ),
)
class RoomMemberViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Membership]):
    """Members of a room: anyone who can see the room lists them; the owner adds and removes."""

    queryset = Membership.objects.all()  # for the schema; requests go through get_queryset
    serializer_class = MemberSerializer
    pagination_class = MemberCursorPagination
    lookup_field = "user_id"

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "create":
            return [IsAuthenticated(), IsRoomOwner()]
        if self.action == "destroy":
            return [IsAuthenticated(), IsRoomOwnerOrSelf()]
        return [IsAuthenticated()]

    def get_room(self) -> Room:
        room_id = _id_or_404(self.kwargs["room_id"])
        room = room_get_visible(room_id=room_id, user=request_user(self.request))
        if room is None:
            raise NotFound
        self.check_object_permissions(self.request, room)
        return room

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Membership.objects.none()
        return membership_list_for_room(room=self.get_room())

    @extend_schema(
        summary="Add someone to a room (owner)",
        description="This is how people get into a private room. 201 with the new member; "
        "200 with the member when they already were one.",
        request=MemberAddSerializer,
        responses={
            201: MemberSerializer,
            200: MemberSerializer,
            400: BAD_REQUEST,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def create(self, request: Request, room_id: str) -> Response:
        room = self.get_room()
        serializer = MemberAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership, created = membership_add(
            room=room, username=serializer.validated_data["username"], by=request_user(request)
        )
        return Response(
            MemberSerializer(membership).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Remove a member (owner, or that member)",
        description="That user's live sockets in the room close with 4403. "
        "The owner cannot be removed (400); a user who is not a member is a 404.",
        responses={204: NO_CONTENT, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def destroy(self, request: Request, room_id: str, user_id: str) -> Response:
        membership_remove(room=self.get_room(), user_id=_id_or_404(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
