"""Writes about rooms and memberships, shared by the REST views, the admin and the consumer.

Rule violations raise Django's exceptions, which ``config.exceptions`` turns into DRF
answers: ``ValidationError`` (400), ``PermissionDenied`` (403) and ``Http404`` (404).
Live sockets hear of a change through ``rooms.events``, only after it commits.
"""

import functools

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Subquery, Value
from django.db.models.functions import Least
from django.http import Http404

from accounts.models import User
from common.text import fold_case
from rooms import events
from rooms.limits import membership_spend_token
from rooms.models import NAME_TAKEN, Membership, Room
from rooms.selectors import room_get_for_user, room_name_taken
from rooms.serializers import room_payload

# Read markers are stored in a signed 64-bit column; a larger seq is clamped anyway.
_MAX_SEQ = 2**63 - 1


def _room_save_checked(*, room: Room) -> None:
    """Validate ``room``'s fields and save it; a public room whose name clashes under case
    folding with another public room's is a 400 (private rooms may share names)."""
    room.name = room.name.strip()
    room.topic = room.topic.strip()
    room.full_clean(exclude=["owner", "last_seq", "last_activity_at"], validate_constraints=False)
    public = room.visibility == Room.Visibility.PUBLIC
    if public and room_name_taken(name=room.name, exclude_pk=room.pk):
        raise ValidationError({"name": [NAME_TAKEN]})
    try:
        # A savepoint, so the surrounding transaction survives the clash of a race.
        with transaction.atomic():
            room.save()
    except IntegrityError as exc:
        if public and room_name_taken(name=room.name, exclude_pk=room.pk):
            raise ValidationError({"name": [NAME_TAKEN]}) from exc
        raise


@transaction.atomic
def room_create(
    *, name: str, topic: str = "", visibility: str = Room.Visibility.PUBLIC, owner: User
) -> Room:
    """Create a room; its owner becomes its first member in the same transaction."""
    room = Room(name=name, topic=topic, visibility=visibility, owner=owner)
    _room_save_checked(room=room)
    Membership.objects.create(room=room, user=owner)
    _announce_joined_on_commit(room.pk, owner)
    return room


def _announce_joined_on_commit(room_id: int, user: User) -> None:
    """After commit, ``room.joined`` on the user's sockets, with the room as they see it
    then (its ``last_rev`` is where their sockets take up its events)."""

    def announce() -> None:
        viewed = room_get_for_user(room_id=room_id, user=user)
        if viewed is not None and viewed.is_member:
            events.send_room_joined(user.pk, room=room_payload(viewed))

    transaction.on_commit(announce, robust=True)


@transaction.atomic
def room_update(
    *,
    room: Room,
    by: User | None,
    name: str | None = None,
    topic: str | None = None,
    visibility: str | None = None,
) -> Room:
    """Change the given fields (None leaves one as it is); sockets in the room hear of it.

    An update by a user (``by``; None for the admin) draws on their limit in the room,
    as a send does (``rooms.limits``; raises ``RateLimited``). One that changes nothing
    saves and tells no one.
    """
    locked = Room.objects.select_for_update().select_related("owner").get(pk=room.pk)
    if by is not None:
        membership_spend_token(room_id=locked.pk, user_id=by.pk)
    before = (locked.name, locked.topic, locked.visibility)
    if name is not None:
        locked.name = name.strip()
    if topic is not None:
        locked.topic = topic.strip()
    if visibility is not None:
        locked.visibility = visibility
    if (locked.name, locked.topic, locked.visibility) == before:
        return locked
    _room_save_checked(room=locked)
    transaction.on_commit(functools.partial(_announce_room_updated, locked), robust=True)
    return locked


def _announce_room_updated(room: Room) -> None:
    """``room.updated`` with the room as everyone sees it, read once (after commit) for
    every socket: each socket adds its own user's fields (role, unread count)."""
    viewed = room_get_for_user(room_id=room.pk, user=room.owner)
    if viewed is None:
        return  # deleted meanwhile: room.deleted tells the sockets
    payload = {**room_payload(viewed), "is_member": None, "role": None, "unread_count": None}
    events.send_room_updated(room.pk, room=payload, last_seq=viewed.room.last_seq)


@transaction.atomic
def room_delete(*, room: Room) -> None:
    """Delete the room with its memberships and messages; its sockets close with 4404."""
    room_id = room.pk
    # Lock first, so that a message being stored in the room finishes (or waits) before
    # the rows it points at disappear.
    locked = Room.objects.select_for_update().filter(pk=room_id).first()
    if locked is None:
        raise Http404("No such room.")
    locked.delete()
    events.publish_room_deleted(room_id)


@transaction.atomic
def room_join(*, room: Room, user: User) -> Membership:
    """Join a public room; joining a room you are already in changes nothing."""
    membership = Membership.objects.filter(room=room, user=user).first()
    if membership is not None:
        return membership
    if room.visibility != Room.Visibility.PUBLIC:
        raise PermissionDenied("Only the owner can add people to a private room.")
    membership, created = Membership.objects.get_or_create(room=room, user=user)
    if created:
        _announce_joined_on_commit(room.pk, user)
    return membership


@transaction.atomic
def room_leave(*, room: Room, user: User) -> None:
    """Leave a room. The owner cannot; someone who is not a member gets a 400."""
    if user.pk == room.owner_id:
        raise ValidationError("The owner cannot leave the room; delete it instead.")
    deleted, _ = Membership.objects.filter(room=room, user=user).delete()
    if not deleted:
        raise ValidationError("You are not a member of this room.")
    events.publish_member_removed(room.pk, user.pk, reason="left")


@transaction.atomic
def membership_add(*, room: Room, username: str, by: User) -> tuple[Membership, bool]:
    """Add the user called ``username`` (case-insensitively) to ``room``.

    The view lets only the owner call this (``by``). Returns the membership and whether
    it is new: adding someone who is already a member changes nothing.
    """
    if by.pk != room.owner_id:
        raise PermissionDenied("Only the room's owner can add members.")
    user = User.objects.filter(username_folded=fold_case(username), is_active=True).first()
    if user is None:
        raise ValidationError({"username": ["No user with that username."]})
    membership, created = Membership.objects.get_or_create(room=room, user=user)
    if created:
        _announce_joined_on_commit(room.pk, user)
    return membership, created


@transaction.atomic
def membership_remove(*, room: Room, user_id: int) -> None:
    """Remove a member (not the owner); that user's sockets in the room close with 4403."""
    if user_id == room.owner_id:
        raise ValidationError("The owner cannot be removed from the room.")
    deleted, _ = Membership.objects.filter(room=room, user_id=user_id).delete()
    if not deleted:
        raise Http404("That user is not a member of this room.")
    events.publish_member_removed(room.pk, user_id, reason="removed")


def room_mark_read(*, room: Room, user: User, seq: int) -> bool:
    """Move ``user``'s read marker in ``room`` forward to ``seq``; never backwards.

    ``seq`` beyond the room's newest message is clamped to it. Returns whether the
    marker moved. Called from both the REST view and the WebSocket consumer.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValidationError({"seq": ["A non-negative integer is required."]})
    # Clamp against the room's row as it is now, not a possibly stale ``room`` object
    # (the consumer keeps one for the life of the socket).
    current_last_seq = Subquery(
        Room.objects.filter(pk=room.pk).values("last_seq")[:1], output_field=BigIntegerField()
    )
    target = Least(Value(min(seq, _MAX_SEQ), output_field=BigIntegerField()), current_last_seq)
    moved = Membership.objects.filter(
        room_id=room.pk, user_id=user.pk, last_read_seq__lt=target
    ).update(last_read_seq=target)
    if not moved:
        if not Membership.objects.filter(room_id=room.pk, user_id=user.pk).exists():
            raise PermissionDenied("You are not a member of this room.")
        return False
    # The user's sockets hear where their marker is now (each keeps its room's unread
    # count from it).
    marker = Membership.objects.filter(room_id=room.pk, user_id=user.pk).values_list(
        "last_read_seq", "room__last_seq"
    )
    row = marker.first()
    if row is not None:
        seq_now, last_seq = row
        events.publish_read_updated(
            user.pk,
            room.pk,
            seq=seq_now,
            unread_count=max(0, last_seq - seq_now),
            # Mentions come with the conversations issue (#15): none exist yet.
            mention_count=0,
        )
    return True
