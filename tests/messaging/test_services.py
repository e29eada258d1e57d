from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from messaging.models import Message
from messaging.services import (
    MessageDraft,
    MessageNotEditable,
    NotAMember,
    RateLimited,
    _originals,
    message_create,
    message_create_many,
    message_delete,
    message_update,
)
from realtime.groups import room_group
from rooms.models import Membership, Room
from tests.conftest import Published, change_frames, event_types
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_message_create_stores_the_next_seq_and_broadcasts_after_commit(
    room: Room, user: User, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = message_create(room=room, author=user, body="one").message
        second = message_create(room=room, author=user, body="two").message
    assert capture_events == []  # nothing is announced before the commit
    for callback in callbacks:
        callback()

    assert [(first.seq, first.rev), (second.seq, second.rev)] == [(1, 1), (2, 2)]
    assert event_types(capture_events) == [(room_group(room.pk), "message.changes")] * 2
    frames = change_frames(capture_events)
    assert [(f["type"], f["message"]["body"]) for f in frames] == [
        ("message.new", "one"),
        ("message.new", "two"),
    ]
    room.refresh_from_db()
    assert (room.last_seq, room.last_rev) == (2, 2)


def test_sending_moves_the_senders_read_marker_to_the_message(room: Room, user: User) -> None:
    message_create(room=room, author=user, body="hello")

    assert Membership.objects.get(room=room, user=user).last_read_seq == 1


def test_repeated_client_id_returns_the_original_and_broadcasts_nothing(
    room: Room, user: User, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    original = message_create(room=room, author=user, body="hello", client_id="c-1").message
    capture_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        result = message_create(room=room, author=user, body="changed", client_id="c-1")

    assert (result.created, result.message.pk, result.message.body) == (False, original.pk, "hello")
    assert capture_events == []
    assert Message.objects.count() == 1


@override_settings(CHAT_MESSAGE_RATE=0.001, CHAT_MESSAGE_BURST=1)
def test_a_resend_gets_its_original_even_when_the_bucket_is_empty(room: Room, user: User) -> None:
    original = message_create(room=room, author=user, body="hello", client_id="c-1").message

    result = message_create(room=room, author=user, body="hello", client_id="c-1")
    with pytest.raises(RateLimited):
        message_create(room=room, author=user, body="new", client_id="c-2")

    assert (result.created, result.message.pk) == (False, original.pk)


def test_a_resend_after_leaving_the_room_still_gets_its_original(room: Room) -> None:
    member = UserFactory.create()
    Membership.objects.create(room=room, user=member)
    original = message_create(room=room, author=member, body="hi", client_id="c-1").message
    Membership.objects.filter(room=room, user=member).delete()

    result = message_create(room=room, author=member, body="hi", client_id="c-1")

    assert (result.created, result.message.pk) == (False, original.pk)
    with pytest.raises(NotAMember):
        message_create(room=room, author=member, body="hi", client_id="c-2")


def test_a_batch_of_new_messages_costs_the_same_few_queries_whatever_its_size(
    user: User, django_assert_max_num_queries
) -> None:
    rooms = [RoomFactory.create(owner=user) for _ in range(20)]
    drafts = [
        MessageDraft(room_id=r.pk, author=user, body=f"m{n}", client_id=f"c{n}-{r.pk}")
        for n in range(5)
        for r in rooms
    ]

    # Lock rooms, lock memberships, insert, update rooms, update memberships (one
    # executemany each); plus the savepoint around them. No lookup for originals.
    with django_assert_max_num_queries(7):
        outcomes = message_create_many(drafts)

    assert all(o.created for o in outcomes)
    assert sorted(Room.objects.values_list("last_seq", flat=True)) == [5] * 20
    assert set(Membership.objects.values_list("last_read_seq", flat=True)) == {5}


def test_looking_up_resends_walks_the_client_id_index(room: Room, user: User) -> None:
    """Not every message of the room: the lookup stays cheap however long the history."""
    if connection.vendor != "sqlite":
        pytest.skip("the plan is checked on SQLite; PostgreSQL plans by table statistics")
    drafts = [MessageDraft(room_id=room.pk, author=user, body="x", client_id=f"c{n}") for n in "ab"]

    with CaptureQueriesContext(connection) as captured:
        _originals(drafts)
    (query,) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
        plan = " ".join(str(row) for row in cursor.fetchall())

    assert "INDEX messaging_message_client_id" in plan
    assert "SCAN messaging_message" not in plan


def test_the_same_client_id_from_another_author_is_a_new_message(room: Room, user: User) -> None:
    other = UserFactory.create()
    Membership.objects.create(room=room, user=other)

    message_create(room=room, author=user, body="a", client_id="same")
    result = message_create(room=room, author=other, body="b", client_id="same")

    assert result.created
    assert Message.objects.count() == 2


def test_a_non_member_cannot_send_and_nothing_is_stored(room: Room) -> None:
    outsider = UserFactory.create()

    with pytest.raises(NotAMember):
        message_create(room=room, author=outsider, body="hi")

    room.refresh_from_db()
    assert (room.last_seq, Message.objects.count()) == (0, 0)


@override_settings(CHAT_MESSAGE_RATE=1.0, CHAT_MESSAGE_BURST=3)
def test_the_token_bucket_refuses_past_the_burst_and_leaves_no_gap(room: Room, user: User) -> None:
    for n in range(3):
        message_create(room=room, author=user, body=f"m{n}")

    with pytest.raises(RateLimited) as limited:
        message_create(room=room, author=user, body="too many")

    assert 0 < limited.value.retry_after <= 1.0
    room.refresh_from_db()
    assert room.last_seq == 3
    assert list(Message.objects.values_list("seq", flat=True).order_by("seq")) == [1, 2, 3]


@override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1)
def test_the_token_bucket_refills_with_time(room: Room, user: User) -> None:
    message_create(room=room, author=user, body="first")
    a_second_later = timezone.now() + timedelta(seconds=1)
    with mock.patch("messaging.services.timezone.now", return_value=a_second_later):
        message_create(room=room, author=user, body="a second later")

    assert Message.objects.count() == 2


def test_editing_sets_edited_at_takes_a_revision_and_broadcasts(
    room: Room, user: User, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    message = message_create(room=room, author=user, body="helo").message
    capture_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        message_update(message=message, body="hello")
        message_update(message=message, body="hello")  # the same body: no change

    message.refresh_from_db()
    assert (message.body, message.edited_at is not None, message.rev) == ("hello", True, 2)
    [frame] = change_frames(capture_events)
    assert (frame["type"], frame["message"]["body"], frame["message"]["rev"]) == (
        "message.updated",
        "hello",
        2,
    )
    room.refresh_from_db()
    assert (room.last_seq, room.last_rev) == (1, 2)


def test_deleting_keeps_seq_and_empties_the_body_once(
    room: Room, user: User, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    message = message_create(room=room, author=user, body="oops").message
    capture_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        message_delete(message=message)
        message_delete(message=message)  # takes no revision, tells no one

    message.refresh_from_db()
    assert (message.seq, message.rev, message.body, message.is_deleted) == (1, 2, "", True)
    deleted = {"type": "message.deleted", "message_id": message.pk, "room": room.pk}
    assert change_frames(capture_events) == [{**deleted, "seq": 1, "rev": 2}]


def test_a_deleted_message_cannot_be_edited(room: Room) -> None:
    message = MessageFactory.create(room=room, is_deleted=True, body="")

    with pytest.raises(MessageNotEditable):
        message_update(message=message, body="back")


@pytest.mark.django_db(transaction=True)
@override_settings(CHAT_MESSAGE_RATE=1000.0, CHAT_MESSAGE_BURST=1000)
def test_concurrent_senders_get_gap_free_seqs_in_commit_order() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    room = RoomFactory.create()
    senders = UserFactory.create_batch(4)
    Membership.objects.bulk_create([Membership(room=room, user=u) for u in senders])

    def send_many(author: User) -> list[int]:
        try:
            return [
                message_create(room=room, author=author, body=f"{author.pk}-{n}").message.seq
                for n in range(15)
            ]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        per_sender = list(pool.map(send_many, senders))

    stored = list(Message.objects.order_by("seq").values_list("seq", "created_at"))
    assert [seq for seq, _ in stored] == list(range(1, 61))
    # Commit order: a later seq was never stamped before an earlier one.
    assert [at for _, at in stored] == sorted(at for _, at in stored)
    assert all(seqs == sorted(seqs) for seqs in per_sender)


@override_settings(CHAT_MESSAGE_RATE=1.0, CHAT_MESSAGE_BURST=2)
def test_a_batch_stores_what_it_may_and_says_why_it_refused_the_rest(
    room: Room,
    user: User,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
    capture_events: Published,
) -> None:
    other_room = RoomFactory.create(owner=user)
    stranger = UserFactory.create()
    stored = message_create(room=room, author=user, body="earlier", client_id="old").message
    drafts = [
        MessageDraft(room_id=room.pk, author=user, body="a", client_id="n1"),
        MessageDraft(room_id=other_room.pk, author=user, body="b"),
        MessageDraft(room_id=room.pk, author=user, body="repeat", client_id="old"),
        MessageDraft(room_id=room.pk, author=user, body="again", client_id="n1"),
        MessageDraft(room_id=room.pk, author=stranger, body="not a member"),
        MessageDraft(room_id=room.pk, author=user, body="over the burst"),
        MessageDraft(room_id=999_999, author=user, body="no such room"),
        MessageDraft(room_id=other_room.pk, author=user, body="c"),
    ]

    capture_events.clear()
    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_max_num_queries(8),
    ):
        outcomes = message_create_many(drafts)

    new_a, new_b, repeat, again, outsider, limited, missing, new_c = outcomes
    assert (new_a.created, new_a.message.seq) == (True, 2)
    assert [(new_b.created, new_b.message.seq), (new_c.created, new_c.message.seq)] == [
        (True, 1),
        (True, 2),
    ]
    assert (repeat.created, repeat.message.pk) == (False, stored.pk)
    assert (again.created, again.message.pk) == (False, new_a.message.pk)
    assert isinstance(outsider, NotAMember)
    assert isinstance(limited, RateLimited)
    assert isinstance(missing, Room.DoesNotExist)
    frames = change_frames(capture_events)
    assert [f["message"]["id"] for f in frames] == [
        new_a.message.pk,
        new_b.message.pk,
        new_c.message.pk,
    ]
    room.refresh_from_db()
    other_room.refresh_from_db()
    assert (room.last_seq, other_room.last_seq) == (2, 2)
    assert Message.objects.count() == 4
    assert Membership.objects.get(room=room, user=user).last_read_seq == 2
