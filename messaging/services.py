"""Writes about messages, shared by the REST views and the WebSocket consumer."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Model, Q
from django.utils import timezone

from accounts.models import User
from messaging import events
from messaging.models import Message
from rooms.limits import RateLimited, membership_spend_token, membership_take_token
from rooms.models import Membership, Room


class NotAMember(Exception):
    """The sender is not (or no longer) a member of the room."""


class MessageNotEditable(Exception):
    """A deleted message cannot be edited."""


@dataclass(frozen=True)
class MessageCreateResult:
    message: Message
    created: bool


@dataclass(frozen=True)
class MessageDraft:
    """A validated message its author asked to send."""

    room_id: int
    author: User
    body: str
    client_id: str = ""

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.room_id, self.author.pk, self.client_id)


# What became of one draft: stored (or the original of a repeated client_id), or the
# reason it was refused, with nothing stored for it.
Outcome = MessageCreateResult | NotAMember | RateLimited | Room.DoesNotExist


def _originals(drafts: Sequence[MessageDraft]) -> dict[tuple[int, int, str], Message]:
    """The stored messages that drafts repeat by client_id, in one query.

    Each condition repeats ``client_id != ''`` so that SQLite uses the partial unique
    index for it, rather than walking every message of the room.
    """
    wanted = Q()
    for draft in drafts:
        if draft.client_id:
            wanted |= Q(
                Q(room_id=draft.room_id, author_id=draft.author.pk, client_id=draft.client_id),
                ~Q(client_id=""),
            )
    if not wanted:
        return {}
    found = Message.objects.select_related("author").filter(wanted)
    return {(m.room_id, m.author_id, m.client_id): m for m in found}


def _concrete_field(model: type[Model], name: str) -> "tuple[Field[Any, Any], str]":
    """The model's field called ``name`` (``pk`` for the primary key) and its column."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.column is not None  # a column of the model's own table
    return field, field.column


def _update_rows(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]]) -> None:
    """``UPDATE model SET fields = ... WHERE pk = ...`` for each ``(pk, *values)`` row.

    One statement run for every row (``executemany``: a single round trip on
    PostgreSQL, a prepared statement on SQLite). ``QuerySet.bulk_update`` builds a
    CASE expression per field per row, which cost more than the rest of a batch.
    """
    meta = model._meta
    columns = [_concrete_field(model, name) for name in fields]
    _, pk_column = _concrete_field(model, "pk")
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column)} = %s" for _, column in columns)
    # Only quoted names from the models' own metadata go into the text; values are
    # parameters.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(pk_column)} = %s"  # noqa: S608
    params = []
    for pk, *values in rows:
        pairs = zip(columns, values, strict=True)
        prepared = (field.get_db_prep_save(value, connection) for (field, _), value in pairs)
        params.append([*prepared, pk])
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def message_create(
    *, room: Room, author: User, body: str, client_id: str = ""
) -> MessageCreateResult:
    """Store a message as the next ``seq`` of its room, then broadcast it after commit.

    Called from the REST view with validated input (``MessageInputSerializer``); the
    WebSocket consumer sends through ``message_create_many``, which this uses too. A
    repeated ``client_id`` from the same author in the same room returns the original
    message and stores and broadcasts nothing.

    Raises ``NotAMember``, ``RateLimited`` or ``Room.DoesNotExist``; nothing is stored then.
    """
    draft = MessageDraft(room_id=room.pk, author=author, body=body, client_id=client_id)
    outcome = message_create_many([draft])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def message_create_many(drafts: Sequence[MessageDraft], *, broadcast: bool = True) -> list[Outcome]:
    """Store many messages in one transaction (group commit); broadcast them after it.

    Each draft gets its outcome, in order: a ``MessageCreateResult``, or the exception
    that refused it (``NotAMember``, ``RateLimited``, ``Room.DoesNotExist``). Messages
    take their rooms' next seqs in the order of ``drafts``.

    With ``broadcast=False`` the caller broadcasts the created messages itself, once
    this has returned (committed): the WebSocket writer does, from the event loop,
    which saves the database thread a hop to the loop and back.
    """
    outcomes: list[Outcome | None] = [None] * len(drafts)
    try:
        # Optimistic: a repeated client_id is rare (a resend after a lost ack), and the
        # unique index notices it for free. Looking for originals up front would cost
        # a query per batch, with a condition per draft.
        created = _store(drafts, list(range(len(drafts))), outcomes)
    except IntegrityError:
        created = _store_with_originals(drafts, outcomes)
    _answer_refused_repeats(drafts, outcomes)
    if created and broadcast:
        events.publish_messages_created(created)
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def _answer_refused_repeats(drafts: Sequence[MessageDraft], outcomes: list[Outcome | None]) -> None:
    """A refused resend of a stored message still gets its original (client_id is idempotent).

    Rare, so looked up only when a draft with a client_id was refused: a sender whose
    bucket is empty, or who left the room, resending what was stored before.
    """
    refused = [
        index
        for index, outcome in enumerate(outcomes)
        if isinstance(outcome, NotAMember | RateLimited) and drafts[index].client_id
    ]
    if not refused:
        return
    originals = _originals([drafts[index] for index in refused])
    for index in refused:
        original = originals.get(drafts[index].key)
        if original is not None:
            outcomes[index] = MessageCreateResult(message=original, created=False)


def _store_with_originals(
    drafts: Sequence[MessageDraft], outcomes: list[Outcome | None]
) -> list[Message]:
    """Some draft repeats a stored client_id: it gets the original, the others are stored."""
    for attempt in range(2):
        outcomes[:] = [None] * len(drafts)
        originals = _originals(drafts)
        pending = []
        for index, draft in enumerate(drafts):
            original = originals.get(draft.key) if draft.client_id else None
            if original is None:
                pending.append(index)
            else:
                outcomes[index] = MessageCreateResult(message=original, created=False)
        if not pending:
            return []
        try:
            return _store(drafts, pending, outcomes)
        except IntegrityError:
            # Another writer stored one of these client_ids since we looked: look again.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _store(
    drafts: Sequence[MessageDraft], pending: list[int], outcomes: list[Outcome | None]
) -> list[Message]:
    """Stores the pending drafts, filling in their outcomes; the messages it created."""
    with transaction.atomic():
        # A room's row is its counter: locking it serializes the room's writers, so
        # seq follows commit order with no gaps, and the clock is read only once the
        # locks are held, so created_at follows seq too. Rooms are locked before
        # memberships, each in id order, on every path that locks both.
        room_ids = sorted({drafts[index].room_id for index in pending})
        counters = (
            Room.objects.select_for_update()
            .filter(pk__in=room_ids)
            .order_by("pk")
            .values_list("pk", "last_seq", "last_rev")
        )
        last_seqs: dict[int, int] = {}
        last_revs: dict[int, int] = {}
        for pk, last_seq, last_rev in counters:
            last_seqs[pk], last_revs[pk] = last_seq, last_rev
        memberships = {
            (m.room_id, m.user_id): m
            for m in Membership.objects.select_for_update()
            .filter(room_id__in=room_ids, user_id__in={drafts[i].author.pk for i in pending})
            .order_by("pk")
        }
        now = timezone.now()
        created: list[Message] = []
        in_batch: dict[tuple[int, int, str], Message] = {}
        senders: dict[int, Membership] = {}
        for index in pending:
            draft = drafts[index]
            if draft.room_id not in last_seqs:
                outcomes[index] = Room.DoesNotExist()
                continue
            if draft.client_id and draft.key in in_batch:
                outcomes[index] = MessageCreateResult(message=in_batch[draft.key], created=False)
                continue
            membership = memberships.get((draft.room_id, draft.author.pk))
            if membership is None:
                outcomes[index] = NotAMember()
                continue
            try:
                membership_take_token(membership, now)
            except RateLimited as limited:
                outcomes[index] = limited
                continue
            seq = last_seqs[draft.room_id] = last_seqs[draft.room_id] + 1
            last_revs[draft.room_id] += 1
            message = Message(
                room_id=draft.room_id,
                author=draft.author,
                seq=seq,
                body=draft.body,
                client_id=draft.client_id,
                created_at=now,
                rev=last_revs[draft.room_id],
            )
            membership.last_read_seq = max(membership.last_read_seq, seq)
            senders[membership.pk] = membership
            created.append(message)
            outcomes[index] = MessageCreateResult(message=message, created=True)
            if draft.client_id:
                in_batch[draft.key] = message
        if created:
            Message.objects.bulk_create(created)
            touched = {message.room_id for message in created}
            _update_rows(
                Room,
                ["last_seq", "last_rev", "last_activity_at"],
                [(pk, last_seqs[pk], last_revs[pk], now) for pk in sorted(touched)],
            )
            _update_rows(
                Membership,
                ["send_allowance", "send_checked_at", "last_read_seq"],
                [
                    (m.pk, m.send_allowance, m.send_checked_at, m.last_read_seq)
                    for m in senders.values()
                ],
            )
    return created


def room_lock_revision(room_id: int) -> int:
    """Locks the room's row, its counter, and returns its newest revision.

    Every change to a room's messages takes the next revision in its transaction, with
    the room's row locked, so revisions follow commit order with no gaps (API.md,
    Revisions). Lock the room before anything else the change locks (memberships,
    messages). Raises ``Room.DoesNotExist`` when the room is gone.
    """
    last_rev = (
        Room.objects.select_for_update()
        .filter(pk=room_id)
        .values_list("last_rev", flat=True)
        .first()
    )
    if last_rev is None:
        raise Room.DoesNotExist
    return last_rev


def message_revise(message: Message, *, last_rev: int, where: Q, **changes: Any) -> bool:
    """Applies ``changes`` to ``message`` as the room's next revision, if its row still
    matches ``where``; whether it did. A change that does not apply takes no revision.

    The one way to change a stored message (edits, deletions, and the reactions to come):
    call it in the change's transaction, after ``room_lock_revision``, then publish the
    change after commit. ``message`` is updated in memory too.
    """
    rev = last_rev + 1
    if not Message.objects.filter(where, pk=message.pk).update(rev=rev, **changes):
        return False
    Room.objects.filter(pk=message.room_id).update(last_rev=rev)
    message.rev = rev
    for field, value in changes.items():
        setattr(message, field, value)
    return True


@transaction.atomic
def message_update(*, message: Message, body: str) -> Message:
    """Replace a message's body; the caller has checked that the editor is its author.

    An edit draws on the author's limit in the room, as a send does (``rooms.limits``):
    raises ``RateLimited``, or ``NotAMember`` once the author has left the room, with
    nothing changed. An edit to the body it already has changes nothing, takes no
    revision and tells no one.
    """
    last_rev = room_lock_revision(message.room_id)
    if membership_spend_token(room_id=message.room_id, user_id=message.author_id) is None:
        raise NotAMember
    # Conditional, so an edit racing a delete can never bring the body back.
    editable = Q(is_deleted=False) & ~Q(body=body)
    if not message_revise(
        message, last_rev=last_rev, where=editable, body=body, edited_at=timezone.now()
    ):
        current = Message.objects.filter(pk=message.pk).values_list("is_deleted", flat=True)
        if current.first() is not False:
            raise MessageNotEditable
        return message  # the same body: nothing to store or broadcast
    events.publish_message_updated(message)
    return message


@transaction.atomic
def message_delete(*, message: Message) -> None:
    """Soft delete: the message keeps its id, seq and place, with an empty body. A second
    deletion changes nothing, takes no revision and tells no one."""
    try:
        last_rev = room_lock_revision(message.room_id)
    except Room.DoesNotExist:
        return  # gone with its room
    if message_revise(
        message, last_rev=last_rev, where=Q(is_deleted=False), body="", is_deleted=True
    ):
        events.publish_message_deleted(message)
