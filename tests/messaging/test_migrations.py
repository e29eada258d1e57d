"""The migration that brings revisions fills them for the messages already stored."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("messaging", "0001_initial"),
    ("rooms", "0003_room_name_unique_public"),
    ("accounts", "0003_user_username_folded"),
]
AFTER = [("messaging", "0002_message_rev")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def test_existing_messages_take_their_seq_as_rev_and_rooms_their_last_seq() -> None:
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    User = old.get_model("accounts", "User")
    Room = old.get_model("rooms", "Room")
    Message = old.get_model("messaging", "Message")
    owner = User.objects.create(username="old-timer", username_folded="old-timer")
    room = Room.objects.create(name="old", name_folded="old", owner=owner, last_seq=3)
    empty = Room.objects.create(name="empty", name_folded="empty", owner=owner)
    for seq in (1, 2, 3):
        Message.objects.create(room=room, author=owner, seq=seq, body=f"m{seq}")

    try:
        new = migrate(AFTER).loader.project_state(AFTER).apps
        Message = new.get_model("messaging", "Message")
        Room = new.get_model("rooms", "Room")
        revs = Message.objects.filter(room_id=room.pk).order_by("seq").values_list("seq", "rev")
        assert list(revs) == [(1, 1), (2, 2), (3, 3)]
        assert Room.objects.get(pk=room.pk).last_rev == 3
        assert Room.objects.get(pk=empty.pk).last_rev == 0
    finally:
        migrate(migrate(AFTER).loader.graph.leaf_nodes())
