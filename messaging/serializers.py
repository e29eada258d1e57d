import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from accounts.serializers import UserBriefSerializer, user_brief_of
from common.text import has_forbidden_characters, is_blank
from common.times import iso_datetime
from messaging.models import Message

MAX_BODY_LENGTH = 4000
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The largest seq a database column can hold (bigint); larger positions name nothing.
MAX_SEQ = 2**63 - 1


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers instead of quietly turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def validate_body(value: str) -> str:
    if is_blank(value):  # format characters (zero-width spaces...) show nothing either
        raise serializers.ValidationError(
            "The body may not be only white space and invisible format characters."
        )
    if has_forbidden_characters(value, allowed="\t\n\r"):
        raise serializers.ValidationError(
            "Control characters other than tab, newline and carriage return are not allowed."
        )
    return value


def message_payload(message: Message) -> dict[str, Any]:
    """``MessageSerializer``'s output, built directly.

    Every ack, broadcast and history page shows messages; a serializer's field machinery
    costs a hundred times more than this dict. The fields are declared on
    ``MessageSerializer`` (and so in the schema), and a test holds the two equal.
    """
    author = message.author
    return _message_dict(
        message.pk,
        message.room_id,
        message.seq,
        message.rev,
        author.pk,
        author.username,
        author.display_name,
        message.body,
        message.client_id,
        message.created_at,
        message.edited_at,
        message.is_deleted,
    )


# The columns of ``_message_dict``'s arguments, in order, as ``values_list`` names them.
_MESSAGE_COLUMNS = (
    "id",
    "room_id",
    "seq",
    "rev",
    "author_id",
    "author__username",
    "author__display_name",
    "body",
    "client_id",
    "created_at",
    "edited_at",
    "is_deleted",
)


def message_payloads(messages: QuerySet[Message], *, limit: int) -> list[dict[str, Any]]:
    """``message_payload`` of the first ``limit`` messages, read as plain rows.

    No model instances: for a history page, building a Message and its author per row
    cost more than the query.
    """
    return [_message_dict(*row) for row in messages.values_list(*_MESSAGE_COLUMNS)[:limit]]


def _message_dict(
    message_id: int,
    room_id: int,
    seq: int,
    rev: int,
    author_id: int,
    username: str,
    display_name: str,
    body: str,
    client_id: str,
    created_at: datetime,
    edited_at: datetime | None,
    is_deleted: bool,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "room": room_id,
        "seq": seq,
        "rev": rev,
        "author": user_brief_of(author_id, username, display_name),
        "body": body,
        "client_id": client_id or None,
        "created_at": iso_datetime(created_at),
        "edited_at": iso_datetime(edited_at),
        "is_deleted": is_deleted,
    }


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A message as history, acks and broadcasts show it."""

    author = UserBriefSerializer(read_only=True)
    room = serializers.IntegerField(source="room_id", read_only=True)
    client_id = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "room",
            "seq",
            "rev",
            "author",
            "body",
            "client_id",
            "created_at",
            "edited_at",
            "is_deleted",
        ]
        read_only_fields = fields

    def get_client_id(self, message: Message) -> str | None:
        return message.client_id or None

    def to_representation(self, instance: Message) -> dict[str, Any]:
        # The declared fields (and get_client_id) still define the schema, and are the
        # reference that tests/messaging/test_fast_paths.py holds message_payload to.
        return message_payload(instance)


class MessageInputSerializer(serializers.Serializer[Any]):
    """What a client may send, over either transport. Anything else in the input is ignored."""

    body = StrictCharField(max_length=MAX_BODY_LENGTH, trim_whitespace=False)
    client_id = StrictCharField(required=False, max_length=64, trim_whitespace=False)

    def validate_body(self, value: str) -> str:
        return validate_body(value)

    def validate_client_id(self, value: str) -> str:
        if not CLIENT_ID_PATTERN.fullmatch(value):
            raise serializers.ValidationError(
                "At most 64 characters of letters, digits, '-' and '_'."
            )
        return value


def message_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """``MessageInputSerializer(data=data)``'s validated data; raises its ValidationError.

    Valid input, nearly every frame a socket sends, is checked here directly; anything
    else goes through the serializer, so errors read exactly as over REST. A test holds
    the two paths to the same answer on every input.
    """
    body = data.get("body")
    client_id = data.get("client_id", _MISSING)
    if (
        type(body) is str
        and len(body) <= MAX_BODY_LENGTH
        and not is_blank(body)
        and not has_forbidden_characters(body, allowed="\t\n\r")
    ):
        if client_id is _MISSING:
            return {"body": body}
        if type(client_id) is str and CLIENT_ID_PATTERN.fullmatch(client_id):
            return {"body": body, "client_id": client_id}
    serializer = MessageInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


_MISSING = object()


class MessageEditSerializer(serializers.Serializer[Any]):
    """The new body of an edited message."""

    body = StrictCharField(max_length=MAX_BODY_LENGTH, trim_whitespace=False)

    def validate_body(self, value: str) -> str:
        return validate_body(value)


class ReadFrameSerializer(serializers.Serializer[Any]):
    """A ``read`` frame: the seq the reader has reached."""

    seq = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)


class TypingFrameSerializer(serializers.Serializer[Any]):
    """A ``typing`` frame."""

    is_typing = serializers.BooleanField()


class AuthFrameSerializer(serializers.Serializer[Any]):
    """An ``auth`` frame: a fresh access token that extends the socket's life."""

    token = StrictCharField(max_length=4096)


class RoomFrameSerializer(serializers.Serializer[Any]):
    """The ``room`` that a user socket's frame names."""

    room = serializers.IntegerField(min_value=1, max_value=MAX_SEQ)

    def to_internal_value(self, data: Any) -> Any:
        # A JSON number, never a string or a float that DRF would convert.
        room = data.get("room") if isinstance(data, Mapping) else None
        if room is not None and type(room) is not int:
            raise serializers.ValidationError({"room": ["A room id (an integer) is required."]})
        return super().to_internal_value(data)


# Rooms a sync request may name, at most (API.md: Sync).
SYNC_MAX_ROOMS = 1000


class SyncInputSerializer(serializers.Serializer[Any]):
    """``POST /sync/``: the revision the client holds of each room it knows."""

    rooms = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_SEQ),
        required=False,
        default=dict,
        help_text="Room id (a string key, as JSON has them) -> the revision the client "
        'holds, e.g. `{"7": 1200}`; at most 1,000 rooms; `{}` on first start.',
    )

    def validate_rooms(self, rooms: dict[str, int]) -> dict[int, int]:
        if len(rooms) > SYNC_MAX_ROOMS:
            raise serializers.ValidationError(f"At most {SYNC_MAX_ROOMS} rooms.")
        known: dict[int, int] = {}
        for key, rev in rooms.items():
            if not (key.isascii() and key.isdigit()) or not 0 < int(key) <= MAX_SEQ:
                raise serializers.ValidationError(f"{key!r} is not a room id.")
            known[int(key)] = rev
        return known


def message_payloads_of(messages: QuerySet[Message]) -> list[dict[str, Any]]:
    """``message_payload`` of every message of ``messages``, read as plain rows."""
    return [_message_dict(*row) for row in messages.values_list(*_MESSAGE_COLUMNS)]
