from collections.abc import Callable

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import User
from messaging.models import Message
from messaging.services import message_create
from rooms.models import Membership, Room
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(room: Room) -> str:
    return f"/api/v1/rooms/{room.pk}/messages/"


def fill(room: Room, count: int) -> None:
    for _ in range(count):
        MessageFactory.create(room=room)


def test_history_is_newest_first_with_the_message_shape(auth_client: APIClient, room: Room) -> None:
    fill(room, 3)

    response = auth_client.get(url(room))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [m["seq"] for m in body["results"]] == [3, 2, 1]
    assert set(body["results"][0]) == {
        "id", "room", "seq", "rev", "author", "body", "client_id", "created_at", "edited_at",
        "is_deleted",
    }  # fmt: skip
    assert body["results"][0]["author"] == {
        "id": room.owner.pk,
        "username": room.owner.username,
        "display_name": room.owner.display_name,
    }
    assert body["results"][0]["created_at"].endswith("Z")
    assert body["next"] is None


def test_next_walks_older_pages_without_repeats_or_gaps(auth_client: APIClient, room: Room) -> None:
    fill(room, 120)
    seen: list[int] = []
    next_url: str | None = url(room) + "?limit=50"

    while next_url:
        body = auth_client.get(next_url).json()
        seen += [m["seq"] for m in body["results"]]
        next_url = body["next"]
        if len(seen) == 50:
            fill(room, 5)  # arrivals while paging shift nothing

    assert seen == list(range(120, 0, -1))


def test_after_walks_forward_oldest_first(auth_client: APIClient, room: Room) -> None:
    fill(room, 7)

    body = auth_client.get(url(room) + "?after=2&limit=3").json()
    rest = auth_client.get(body["next"]).json()

    assert [m["seq"] for m in body["results"]] == [3, 4, 5]
    assert [m["seq"] for m in rest["results"]] == [6, 7]
    assert rest["next"] is None


def test_before_gives_older_messages(auth_client: APIClient, room: Room) -> None:
    fill(room, 10)

    body = auth_client.get(url(room) + "?before=4").json()

    assert [m["seq"] for m in body["results"]] == [3, 2, 1]


def test_limit_defaults_to_50_and_is_capped_at_100(auth_client: APIClient, room: Room) -> None:
    fill(room, 120)

    default = auth_client.get(url(room)).json()
    huge = auth_client.get(url(room) + "?limit=1000000000000000000000").json()

    assert len(default["results"]) == 50
    assert len(huge["results"]) == 100


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=-1", "limit=abc", "before=x", "after=-1", "before=1&after=2",
     f"after={2**64}", "before=1e3"],
)  # fmt: skip
def test_bad_page_parameters_are_400(auth_client: APIClient, room: Room, query: str) -> None:
    response = auth_client.get(url(room) + "?" + query)

    assert response.status_code == 400


def test_a_deleted_message_keeps_its_place_with_an_empty_body(
    auth_client: APIClient, room: Room
) -> None:
    fill(room, 2)
    Message.objects.filter(seq=1).update(body="", is_deleted=True)

    results = auth_client.get(url(room)).json()["results"]

    assert [(m["seq"], m["body"], m["is_deleted"]) for m in results][1] == (1, "", True)


def test_anyone_who_can_see_a_public_room_reads_its_history(
    client_for: Callable[[User], APIClient], room: Room
) -> None:
    fill(room, 1)

    response = client_for(UserFactory.create()).get(url(room))

    assert response.status_code == 200


def test_private_history_is_404_for_outsiders_and_unknown_rooms(
    client_for: Callable[[User], APIClient],
) -> None:
    private = RoomFactory.create(visibility=Room.Visibility.PRIVATE)
    outsider = client_for(UserFactory.create())

    assert outsider.get(url(private)).status_code == 404
    assert outsider.get("/api/v1/rooms/999999/messages/").status_code == 404


def test_history_needs_authentication(api_client: APIClient, room: Room) -> None:
    assert api_client.get(url(room)).status_code == 401


def test_a_page_costs_the_same_queries_at_any_depth(
    auth_client: APIClient, room: Room, django_assert_max_num_queries
) -> None:
    fill(room, 60)
    with django_assert_max_num_queries(4):
        auth_client.get(url(room) + "?before=5")
    with django_assert_max_num_queries(4):
        auth_client.get(url(room))


# Sending -------------------------------------------------------------------------


def test_post_sends_as_the_token_user_whatever_the_body_says(
    auth_client: APIClient, room: Room, user: User
) -> None:
    other = UserFactory.create()

    response = auth_client.post(
        url(room),
        {"body": "<script>alert(1)</script>", "author": other.pk, "author_id": other.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["author"]["id"] == user.pk
    assert response.json()["body"] == "<script>alert(1)</script>"  # verbatim
    assert Message.objects.get().author == user


def test_a_repeated_client_id_answers_200_with_the_original(
    auth_client: APIClient, room: Room
) -> None:
    first = auth_client.post(url(room), {"body": "hi", "client_id": "abc-1"}, format="json")
    again = auth_client.post(url(room), {"body": "hi", "client_id": "abc-1"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"body": ""},
        {"body": "   \n\t "},
        {"body": "x" * 4001},
        {"body": "nul\x00byte"},
        {"body": "bell\x07"},
        {"body": 42},
        {"body": ["list"]},
        {"body": None},
        {"body": "ok", "client_id": "has space"},
        {"body": "ok", "client_id": "x" * 65},
        {"body": "ok", "client_id": "trailing\n"},
        {"body": "ok", "client_id": 7},
    ],
)
def test_bad_messages_are_400_and_store_nothing(
    auth_client: APIClient, room: Room, payload: dict[str, object]
) -> None:
    response = auth_client.post(url(room), payload, format="json")

    assert response.status_code == 400
    assert Message.objects.count() == 0
    room.refresh_from_db()
    assert room.last_seq == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"body": "lone \\ud800 surrogate"}',
        b'{"body": "invalid \xff\xfe utf-8"}',
        b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"body": "unterminated',
        b"[1, 2, 3]",
        b'"just a string"',
    ],
    ids=["surrogate", "bad-utf8", "deep-nesting", "truncated", "array", "string"],
)
def test_hostile_json_bodies_are_400_and_store_nothing(
    auth_client: APIClient, room: Room, raw: bytes
) -> None:
    response = auth_client.post(url(room), raw, content_type="application/json")

    assert response.status_code == 400
    assert Message.objects.count() == 0


def test_tabs_newlines_and_4000_characters_are_fine(auth_client: APIClient, room: Room) -> None:
    body = "line one\r\n\tline two" + "x" * (4000 - 19)

    response = auth_client.post(url(room), {"body": body}, format="json")

    assert response.status_code == 201
    assert response.json()["body"] == body


def test_a_public_room_non_member_gets_403_and_a_private_one_404(
    client_for: Callable[[User], APIClient], room: Room
) -> None:
    private = RoomFactory.create(visibility=Room.Visibility.PRIVATE)
    outsider = client_for(UserFactory.create())

    assert outsider.post(url(room), {"body": "hi"}, format="json").status_code == 403
    assert outsider.post(url(private), {"body": "hi"}, format="json").status_code == 404
    assert Message.objects.count() == 0


@override_settings(CHAT_MESSAGE_RATE=0.5, CHAT_MESSAGE_BURST=2)
def test_sending_too_fast_is_429_with_retry_after(auth_client: APIClient, room: Room) -> None:
    codes = [auth_client.post(url(room), {"body": f"m{n}"}, format="json") for n in range(3)]

    assert [r.status_code for r in codes] == [201, 201, 429]
    assert int(codes[2]["Retry-After"]) >= 1
    assert Message.objects.count() == 2


# Editing and deleting --------------------------------------------------------------


def message_url(message: Message) -> str:
    return f"/api/v1/messages/{message.pk}/"


def test_the_author_edits_a_message(auth_client: APIClient, room: Room, user: User) -> None:
    message = message_create(room=room, author=user, body="helo").message

    response = auth_client.patch(message_url(message), {"body": "hello"}, format="json")

    assert response.status_code == 200
    assert response.json()["body"] == "hello"
    assert response.json()["edited_at"] is not None


def test_others_cannot_edit_and_bad_bodies_are_400(
    client_for: Callable[[User], APIClient], room: Room, user: User
) -> None:
    message = message_create(room=room, author=user, body="mine").message
    member = UserFactory.create()
    Membership.objects.create(room=room, user=member)

    assert (
        client_for(member).patch(message_url(message), {"body": "x"}, format="json").status_code
        == 403
    )
    assert (
        client_for(user).patch(message_url(message), {"body": " "}, format="json").status_code
        == 400
    )
    message.refresh_from_db()
    assert message.body == "mine"


def test_the_author_or_the_owner_deletes_and_others_cannot(
    client_for: Callable[[User], APIClient], room: Room, user: User
) -> None:
    member, stranger = UserFactory.create_batch(2)
    Membership.objects.create(room=room, user=member)
    by_member = message_create(room=room, author=member, body="a").message
    by_member_too = message_create(room=room, author=member, body="b").message

    assert client_for(stranger).delete(message_url(by_member)).status_code == 403
    assert client_for(member).delete(message_url(by_member)).status_code == 204
    assert client_for(user).delete(message_url(by_member_too)).status_code == 204  # owner
    assert list(Message.objects.values_list("is_deleted", "body")) == [(True, ""), (True, "")]


def test_messages_of_a_private_room_are_404_to_outsiders(
    client_for: Callable[[User], APIClient],
) -> None:
    private = RoomFactory.create(visibility=Room.Visibility.PRIVATE)
    message = MessageFactory.create(room=private)
    outsider = client_for(UserFactory.create())

    assert outsider.patch(message_url(message), {"body": "x"}, format="json").status_code == 404
    assert outsider.delete(message_url(message)).status_code == 404
    assert outsider.delete("/api/v1/messages/999999/").status_code == 404


def test_a_deleted_message_cannot_be_edited_over_rest(
    auth_client: APIClient, room: Room, user: User
) -> None:
    message = message_create(room=room, author=user, body="gone").message
    auth_client.delete(message_url(message))

    response = auth_client.patch(message_url(message), {"body": "back"}, format="json")

    assert response.status_code == 400
