import pytest
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from accounts.models import User
from messaging.models import Message
from messaging.services import message_create
from rooms.models import Room
from tests.conftest import Published, change_frames

pytestmark = pytest.mark.django_db


@pytest.fixture
def message(room: Room, user: User) -> Message:
    return message_create(room=room, author=user, body="first words").message


def test_the_admin_lists_and_opens_messages(admin_client: Client, message: Message) -> None:
    listing = admin_client.get("/admin/messaging/message/")
    detail = admin_client.get(f"/admin/messaging/message/{message.pk}/change/")

    assert listing.status_code == 200
    assert b"first words" in listing.content
    assert detail.status_code == 200
    assert b'name="body"' in detail.content


def test_editing_a_message_in_the_admin_tells_live_sockets(
    admin_client: Client,
    message: Message,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/messaging/message/{message.pk}/change/", {"body": "moderated"}
        )

    assert response.status_code == 302, response.content
    message.refresh_from_db()
    assert message.body == "moderated"
    assert message.edited_at is not None
    [frame] = change_frames(capture_events)
    assert frame["type"] == "message.updated"
    assert (frame["message"]["id"], frame["message"]["body"]) == (message.pk, "moderated")
    assert frame["message"]["edited_at"] is not None


def test_a_blank_body_is_refused_in_the_admin(admin_client: Client, message: Message) -> None:
    response = admin_client.post(f"/admin/messaging/message/{message.pk}/change/", {"body": "   "})

    assert response.status_code == 200  # the form again, with the error
    message.refresh_from_db()
    assert message.body == "first words"


def test_deleting_a_message_in_the_admin_tells_live_sockets(
    admin_client: Client,
    message: Message,
    room: Room,
    user: User,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capture_events: Published,
) -> None:
    other = message_create(room=room, author=user, body="second words").message
    capture_events.clear()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/messaging/message/{message.pk}/delete/", {"post": "yes"})
        admin_client.post(
            "/admin/messaging/message/",
            {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
        )

    assert change_frames(capture_events) == [
        {"type": "message.deleted", "message_id": message.pk, "room": room.pk, "seq": 1, "rev": 3},
        {"type": "message.deleted", "message_id": other.pk, "room": room.pk, "seq": 2, "rev": 4},
    ]
    # A soft delete, as through the API: the seq keeps its place in the history.
    assert list(Message.objects.order_by("seq").values_list("is_deleted", "body")) == [
        (True, ""),
        (True, ""),
    ]


def test_messages_cannot_be_added_in_the_admin(admin_client: Client) -> None:
    # A message's seq is the room's counter: only message_create assigns it.
    assert admin_client.get("/admin/messaging/message/add/").status_code == 403
