"""Writes about messages, shared by the REST views and the WebSocket consumer."""

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from messaging import events
from messaging.models import Message
from rooms.models import Membership, Room


class NotAMember(Exception):
    """The sender is not (or no longer) a member of the room."""


class RateLimited(Exception):
    """The sender's token bucket for this room is empty."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Sending too fast; retry in {retry_after:.3f} s.")
        self.retry_after = retry_after


class MessageNotEditable(Exception):
    """A deleted message cannot be edited."""


@dataclass(frozen=True)
class MessageCreateResult:
    message: Message
    created: bool


def _message_by_client_id(*, room_id: int, author: User, client_id: str) -> Message | None:
    if not client_id:
        return None
    return (
        Message.objects.select_related("author")
        .filter(room_id=room_id, author=author, client_id=client_id)
        .first()
    )


def _take_send_token(membership: Membership, now: datetime) -> None:
    """Token bucket: ``CHAT_MESSAGE_RATE`` a second, bursts of ``CHAT_MESSAGE_BURST``."""
    rate = settings.CHAT_MESSAGE_RATE
    burst = float(settings.CHAT_MESSAGE_BURST)
    allowance = burst if membership.send_allowance is None else membership.send_allowance
    if membership.send_checked_at is not None:
        elapsed = max(0.0, (now - membership.send_checked_at).total_seconds())
        allowance = min(burst, allowance + elapsed * rate)
    if allowance < 1.0:
        raise RateLimited(retry_after=(1.0 - allowance) / rate)
    membership.send_allowance = allowance - 1.0
    membership.send_checked_at = now


def message_create(
    *, room: Room, author: User, body: str, client_id: str = ""
) -> MessageCreateResult:
    """Store a message as the next ``seq`` of its room, then broadcast it after commit.

    Called from both the REST view and the WebSocket consumer with validated input
    (``MessageInputSerializer``). A repeated ``client_id`` from the same author in the
    same room returns the original message and stores and broadcasts nothing.

    Raises ``NotAMember``, ``RateLimited`` or ``Room.DoesNotExist``; nothing is stored then.
    """
    original = _message_by_client_id(room_id=room.pk, author=author, client_id=client_id)
    if original is not None:
        return MessageCreateResult(message=original, created=False)
    try:
        with transaction.atomic():
            # The room row is the counter: locking it serializes the room's writers,
            # so seq follows commit order with no gaps, and the clock is read only
            # once the lock is held, so created_at follows seq too. Every path that
            # locks both a room and a membership locks the room first.
            locked = Room.objects.select_for_update().filter(pk=room.pk)
            last_seq = locked.values_list("last_seq", flat=True).first()
            if last_seq is None:
                raise Room.DoesNotExist
            seq = last_seq + 1
            now = timezone.now()
            Room.objects.filter(pk=room.pk).update(last_seq=seq, last_activity_at=now)
            membership = (
                Membership.objects.select_for_update().filter(room_id=room.pk, user=author).first()
            )
            if membership is None:
                raise NotAMember
            _take_send_token(membership, now)
            membership.last_read_seq = max(membership.last_read_seq, seq)
            membership.save(update_fields=["send_allowance", "send_checked_at", "last_read_seq"])
            message = Message.objects.create(
                room_id=room.pk,
                author=author,
                seq=seq,
                body=body,
                client_id=client_id,
                created_at=now,
            )
    except IntegrityError:
        # Two sends of one client_id raced; the other one won and is the original.
        original = _message_by_client_id(room_id=room.pk, author=author, client_id=client_id)
        if original is None:
            raise
        return MessageCreateResult(message=original, created=False)
    transaction.on_commit(partial(events.broadcast_message_created, message))
    return MessageCreateResult(message=message, created=True)


def message_update(*, message: Message, body: str) -> Message:
    """Replace a message's body; the caller has checked that the editor is its author."""
    now = timezone.now()
    # Conditional, so an edit racing a delete can never bring the body back.
    if not Message.objects.filter(pk=message.pk, is_deleted=False).update(body=body, edited_at=now):
        raise MessageNotEditable
    message.body = body
    message.edited_at = now
    transaction.on_commit(partial(events.broadcast_message_updated, message))
    return message


def message_delete(*, message: Message) -> None:
    """Soft delete: the message keeps its id, seq and place, with an empty body."""
    if not Message.objects.filter(pk=message.pk, is_deleted=False).update(body="", is_deleted=True):
        return  # already deleted: nothing new to tell anyone
    message.body = ""
    message.is_deleted = True
    transaction.on_commit(
        partial(events.broadcast_message_deleted, message_id=message.pk, room_id=message.room_id)
    )
