from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import UserBriefSerializer, user_brief
from common.text import NAME_VALIDATORS
from common.times import iso_datetime
from rooms.last_message import last_message_payload, last_message_schema
from rooms.models import Membership, Room
from rooms.selectors import RoomForUser, room_for_user

NAME_MAX_LENGTH = 64
TOPIC_MAX_LENGTH = 256
ROLE_CHOICES = ["owner", "member"]
KIND_CHOICES = ["channel", "dm"]
# Every room is a channel until direct messages come (API.md, Direct messages).
CHANNEL = "channel"


def room_payload(view: RoomForUser) -> dict[str, Any]:
    """``RoomSerializer``'s output, built directly: every socket's ``hello`` and every
    room list shows rooms. A test holds the two equal."""
    room = view.room
    return {
        "id": room.pk,
        "kind": CHANNEL,
        "name": room.name,
        "topic": room.topic,
        "visibility": str(room.visibility),
        "owner": user_brief(room.owner),
        "created_at": iso_datetime(room.created_at),
        "member_count": view.member_count,
        "is_member": view.is_member,
        "role": view.role,
        "unread_count": view.unread_count,
        "last_seq": room.last_seq,
        "last_rev": room.last_rev,
        "last_message": last_message_payload(room),
    }


class RoomSerializer(serializers.ModelSerializer[Room]):
    """A room as one user sees it (output only).

    Shows a ``RoomForUser`` (``room_get_for_user``) or a room annotated by
    ``room_list_for_user``, so it needs no request in its context and costs no query per
    room.
    """

    kind = serializers.SerializerMethodField()
    owner = UserBriefSerializer(read_only=True)
    member_count = serializers.IntegerField(read_only=True)
    is_member = serializers.BooleanField(read_only=True)
    role = serializers.ChoiceField(
        choices=ROLE_CHOICES,
        allow_null=True,
        read_only=True,
        help_text="The caller's role; null when the caller is not a member.",
    )
    unread_count = serializers.IntegerField(
        allow_null=True,
        read_only=True,
        help_text="Messages after the caller's read marker; null when not a member.",
    )
    last_seq = serializers.IntegerField(
        read_only=True, help_text="The seq of the room's newest message (0: none yet)."
    )
    last_rev = serializers.IntegerField(
        read_only=True, help_text="The room's newest revision (see changes/)."
    )
    last_message = serializers.SerializerMethodField(allow_null=True)

    class Meta:
        model = Room
        fields = [
            "id",
            "kind",
            "name",
            "topic",
            "visibility",
            "owner",
            "created_at",
            "member_count",
            "is_member",
            "role",
            "unread_count",
            "last_seq",
            "last_rev",
            "last_message",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=KIND_CHOICES))
    def get_kind(self, room: Room) -> str:
        return CHANNEL

    @extend_schema_field(last_message_schema())
    def get_last_message(self, room: Room) -> dict[str, Any] | None:
        return last_message_payload(room)

    def to_representation(self, instance: Room | RoomForUser) -> dict[str, Any]:
        # The declared fields (and get_last_message) still define the schema, and are
        # the reference that tests/rooms/test_selectors.py holds room_payload to. A Room
        # here comes from room_list_for_user (the list, and get_object), annotated.
        if isinstance(instance, Room):
            instance = room_for_user(instance)
        return room_payload(instance)


class RoomInputSerializer(serializers.Serializer[Any]):
    """Input of ``POST /rooms/`` and, with ``partial=True``, of ``PATCH /rooms/{id}/``.

    The services enforce the same rules again (and the name's uniqueness).
    """

    name = serializers.CharField(
        max_length=NAME_MAX_LENGTH,
        validators=NAME_VALIDATORS,
        help_text="1-64 characters after trimming, no control or invisible format "
        "characters; unique among public channels without regard to case (full "
        "Unicode case folding); private rooms may share a name.",
    )
    topic = serializers.CharField(
        max_length=TOPIC_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        validators=NAME_VALIDATORS,
    )
    visibility = serializers.ChoiceField(
        choices=Room.Visibility.choices, required=False, default=Room.Visibility.PUBLIC
    )


class RoomListQuerySerializer(serializers.Serializer[Any]):
    """Query parameters of ``GET /rooms/``."""

    joined = serializers.BooleanField(
        required=False, default=False, help_text="Only the rooms the caller is a member of."
    )
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=256,
        help_text="Only rooms whose name contains this text, without regard to case.",
    )


class MemberSerializer(serializers.ModelSerializer[Membership]):
    """One member of a room (output only)."""

    user = UserBriefSerializer(read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["user", "role", "joined_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=ROLE_CHOICES))
    def get_role(self, membership: Membership) -> str:
        # ``membership_list_for_room`` annotates the role; a lone membership works it out.
        role: str | None = getattr(membership, "role", None)
        if role is None:
            role = "owner" if membership.user_id == membership.room.owner_id else "member"
        return role


class MemberAddSerializer(serializers.Serializer[Any]):
    """Input of ``POST /rooms/{id}/members/``."""

    username = serializers.CharField(max_length=150, help_text="Matched without regard to case.")


class ReadMarkerSerializer(serializers.Serializer[Any]):
    """Input of ``POST /rooms/{id}/read/``."""

    seq = serializers.IntegerField(
        min_value=0,
        help_text="The seq of the last message read; beyond the newest message it is "
        "clamped, and a marker never moves backwards.",
    )
