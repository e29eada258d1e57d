from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.serializers import ErrorSerializer
from messaging.models import Message
from messaging.pagination import MessageRevPagination, MessageSeqPagination
from messaging.selectors import (
    SYNC_CHANGES_PER_ROOM,
    message_get_for_user,
    message_list_for_room,
    sync_for_user,
)
from messaging.serializers import (
    MessageEditSerializer,
    MessageInputSerializer,
    MessageSerializer,
    SyncInputSerializer,
)
from messaging.services import (
    MessageNotEditable,
    NotAMember,
    message_create,
    message_delete,
    message_update,
)
from rooms.models import Room
from rooms.selectors import membership_get, room_get_visible
from rooms.serializers import RoomSerializer

BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: field errors (`{"body": ["..."]}`) or `{"detail": "..."}`.',
)
NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No such room or message, or not visible to you."
)


class RoomMessagesView(viewsets.GenericViewSet[Message]):
    """A room's messages, visible to the caller (or a 404), listed by the paginator."""

    serializer_class = MessageSerializer
    queryset = Message.objects.none()

    def get_room(self) -> Room:
        assert isinstance(self.request.user, User)
        room = room_get_visible(room_id=int(self.kwargs["room_id"]), user=self.request.user)
        if room is None:
            raise exceptions.NotFound
        return room

    def get_queryset(self) -> QuerySet[Message]:
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        return message_list_for_room(room=self.get_room())

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The paginator returns the page already as payloads (MessageSerializer's shape).
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(page)


@extend_schema(tags=["messages"])
@extend_schema_view(
    list=extend_schema(
        summary="History of a room, keyset-paginated by seq",
        responses={200: MessageSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary="Send a message",
        request=MessageInputSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="A repeated client_id"),
            400: BAD_REQUEST,
            403: OpenApiResponse(description="Not a member of this public room"),
            404: OpenApiResponse(description="No such room, or not visible to you"),
            429: OpenApiResponse(description="Sending too fast; see Retry-After"),
        },
    ),
)
class RoomMessageViewSet(mixins.CreateModelMixin, RoomMessagesView):
    """A room's history (GET) and sending over plain HTTP (POST)."""

    pagination_class = MessageSeqPagination

    def create(self, request: Request, room_id: str) -> Response:
        assert isinstance(request.user, User)
        room = self.get_room()
        if membership_get(room_id=room.pk, user_id=request.user.pk) is None:
            raise exceptions.PermissionDenied("Join the room to send messages to it.")
        serializer = MessageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = message_create(room=room, author=request.user, **serializer.validated_data)
        except NotAMember:
            raise exceptions.PermissionDenied("Join the room to send messages to it.") from None
        except Room.DoesNotExist:
            raise exceptions.NotFound from None
        return Response(
            MessageSerializer(result.message).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


@extend_schema(tags=["messages"])
@extend_schema_view(
    list=extend_schema(
        summary="A room's changes after a revision: each message once, in its current state",
        description="Every message whose `rev` is above `after`, in `rev` order, tombstones "
        "included. A client that holds the room as of revision R and applies these to the "
        "end holds every message in its current state (API.md, Revisions).",
        responses={200: MessageSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND},
    ),
)
class RoomChangesViewSet(RoomMessagesView):
    """``GET /rooms/{id}/changes/``: the room's history as changes, keyed by ``rev``."""

    pagination_class = MessageRevPagination


@extend_schema(tags=["messages"])
@extend_schema_view(
    partial_update=extend_schema(
        summary="Edit your message",
        request=MessageEditSerializer,
        responses={
            200: MessageSerializer,
            400: BAD_REQUEST,
            403: OpenApiResponse(
                ErrorSerializer, description="Not the message's author, or not a member."
            ),
            404: NOT_FOUND,
            429: OpenApiResponse(description="Editing too fast; see Retry-After"),
        },
    ),
    destroy=extend_schema(
        summary="Delete a message (its author, or the room's owner)",
        responses={
            204: OpenApiResponse(description="Deleted; no body."),
            403: OpenApiResponse(
                ErrorSerializer, description="Neither the author nor the room's owner."
            ),
            404: NOT_FOUND,
        },
    ),
)
class MessageViewSet(viewsets.GenericViewSet[Message]):
    """Edit (author) and delete (author or room owner) one message."""

    serializer_class = MessageSerializer
    queryset = Message.objects.none()
    http_method_names = ["patch", "delete", "options"]

    def get_object(self) -> Message:
        assert isinstance(self.request.user, User)
        message_id = int(self.kwargs["message_id"])
        message = message_get_for_user(message_id=message_id, user=self.request.user)
        if message is None:
            raise exceptions.NotFound
        return message

    def partial_update(self, request: Request, message_id: str) -> Response:
        message = self.get_object()
        if message.author_id != request.user.pk:
            raise exceptions.PermissionDenied("Only its author can edit a message.")
        serializer = MessageEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = message_update(message=message, body=serializer.validated_data["body"])
        except MessageNotEditable:
            raise exceptions.ValidationError(
                {"detail": "A deleted message cannot be edited."}
            ) from None
        except NotAMember:
            raise exceptions.PermissionDenied(
                "Only a member of the room can edit messages in it."
            ) from None
        except Room.DoesNotExist:  # deleted with its room meanwhile
            raise exceptions.NotFound from None
        return Response(MessageSerializer(message).data)

    def destroy(self, request: Request, message_id: str) -> Response:
        message = self.get_object()
        if request.user.pk not in (message.author_id, message.room.owner_id):
            raise exceptions.PermissionDenied(
                "Only its author or the room's owner can delete a message."
            )
        message_delete(message=message)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SyncRoomSerializer(serializers.Serializer[Any]):
    """One room of a sync answer (output only; the schema)."""

    room = RoomSerializer()
    changes = MessageSerializer(many=True)
    next = serializers.URLField(
        allow_null=True, help_text="The `changes/` URL that continues; null when that is all."
    )


class SyncSerializer(serializers.Serializer[Any]):
    rooms = SyncRoomSerializer(many=True)
    left = serializers.ListField(child=serializers.IntegerField())


@extend_schema(
    tags=["messages"],
    summary="Bring a device up to date on every room at once",
    description="Every room the caller is a member of, most recently active first; for "
    "each room the body names, its changes above that revision (at most 100, `next` "
    "continues in `changes/`); `left`: the rooms named that the caller is not a member of "
    "now. Changes nothing on the server (API.md, Sync).",
    request=SyncInputSerializer,
    responses={200: SyncSerializer, 400: BAD_REQUEST},
)
class SyncView(APIView):
    """``POST /sync/``."""

    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        params = SyncInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        sync = sync_for_user(user=request.user, known=params.validated_data["rooms"])
        rooms = []
        for entry in sync.rooms:
            next_url = None
            if entry.more_after is not None:
                path = reverse("room-changes", kwargs={"room_id": entry.room["id"]})
                next_url = request.build_absolute_uri(
                    f"{path}?after={entry.more_after}&limit={SYNC_CHANGES_PER_ROOM}"
                )
            rooms.append({"room": entry.room, "changes": entry.changes, "next": next_url})
        return Response({"rooms": rooms, "left": sync.left})
