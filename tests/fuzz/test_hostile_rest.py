"""The named hostile inputs over REST, field by field: never a 500, never stored.

10,000-character names, NUL bytes and lone surrogates in every text field, invalid
UTF-8 and non-object JSON bodies, huge ``limit`` values (clamped to 100). Forged
cursors and links and deep nesting are in ``test_traps``; random input of every other
kind comes from Schemathesis (``test_openapi_schemathesis``).
"""

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from messaging.models import Message
from rooms.models import Membership, Room
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

LONG = "n" * 10_000
PASSWORD = "pale-violet-tractor-81"

# Every text field a client writes: (method, path, body with {value}, the field).
# Paths name {room}, {message} and {member}, made by the ``targets`` fixture.
TEXT_FIELDS = [
    ("post", "/api/v1/auth/register/", {"username": "{value}", "password": PASSWORD}, "username"),
    ("post", "/api/v1/auth/register/", {"username": "fresh", "password": "{value}"}, "password"),
    (
        "post",
        "/api/v1/auth/register/",
        {"username": "fresh", "password": PASSWORD, "display_name": "{value}"},
        "display_name",
    ),
    ("post", "/api/v1/auth/token/", {"username": "{value}", "password": PASSWORD}, "username"),
    ("post", "/api/v1/auth/token/", {"username": "owner", "password": "{value}"}, "password"),
    ("post", "/api/v1/auth/token/refresh/", {"refresh": "{value}"}, "refresh"),
    ("post", "/api/v1/auth/logout/", {"refresh": "{value}"}, "refresh"),
    ("patch", "/api/v1/users/me/", {"display_name": "{value}"}, "display_name"),
    ("post", "/api/v1/rooms/", {"name": "{value}"}, "name"),
    ("post", "/api/v1/rooms/", {"name": "fine", "topic": "{value}"}, "topic"),
    ("patch", "/api/v1/rooms/{room}/", {"name": "{value}"}, "name"),
    ("patch", "/api/v1/rooms/{room}/", {"topic": "{value}"}, "topic"),
    ("post", "/api/v1/rooms/{room}/members/", {"username": "{value}"}, "username"),
    ("post", "/api/v1/rooms/{room}/messages/", {"body": "{value}"}, "body"),
    ("post", "/api/v1/rooms/{room}/messages/", {"body": "ok", "client_id": "{value}"}, "client_id"),
    ("patch", "/api/v1/messages/{message}/", {"body": "{value}"}, "body"),
]

# Fields with a length limit: a 10,000-character value is a field error there. (A login
# with a 10,000-character username or password is just a wrong login: 401.)
TOKEN_PATHS = ("/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/logout/")
LIMITED = [case for case in TEXT_FIELDS if case[1] not in TOKEN_PATHS]


@pytest.fixture
def owner(db: None) -> User:
    return UserFactory.create(username="owner")


@pytest.fixture
def targets(owner: User) -> dict[str, int]:
    room = RoomFactory.create(owner=owner, members=[UserFactory.create()])
    message = MessageFactory.create(room=room, author=owner)
    return {"room": room.pk, "message": message.pk}


@pytest.fixture
def owner_client(owner: User) -> APIClient:
    client = APIClient()
    refresh = RefreshToken.for_user(owner)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    return client


def fill(template: dict[str, str], value: str) -> dict[str, str]:
    return {key: value if text == "{value}" else text for key, text in template.items()}


def snapshot() -> tuple[Any, ...]:
    """Everything a write could change."""
    return (
        list(User.objects.order_by("pk").values_list("username", "display_name", "password")),
        list(Room.objects.order_by("pk").values_list("name", "topic", "visibility")),
        list(Membership.objects.order_by("pk").values_list("room_id", "user_id")),
        list(Message.objects.order_by("pk").values_list("body", "client_id", "edited_at")),
    )


Send = Callable[[str, str, Any], Any]


@pytest.fixture
def send(owner_client: APIClient, targets: dict[str, int]) -> Send:
    def request(method: str, path: str, body: Any) -> Any:
        call = getattr(owner_client, method)
        # json.dumps escapes what UTF-8 cannot carry: "\u0000", "\ud800" on the wire.
        raw = json.dumps(body)
        return call(path.format(**targets), raw, content_type="application/json")

    return request


@pytest.mark.parametrize(("method", "path", "template", "field"), LIMITED)
def test_a_10000_character_value_is_a_field_error(
    send: Send, method: str, path: str, template: dict[str, str], field: str
) -> None:
    before = snapshot()

    response = send(method, path, fill(template, LONG))

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert snapshot() == before


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_10000_character_login_is_a_wrong_login(send: Send, field: str) -> None:
    body = {"username": "owner", "password": PASSWORD, field: LONG}

    response = send("post", "/api/v1/auth/token/", body)

    assert response.status_code in (400, 401), response.content


@pytest.mark.parametrize("value", ["\x00", "nul\x00inside", "\ud800", "lone \udfff low"])
@pytest.mark.parametrize(("method", "path", "template", "field"), TEXT_FIELDS)
def test_nul_bytes_and_lone_surrogates_are_field_errors_in_every_text_field(
    send: Send, method: str, path: str, template: dict[str, str], field: str, value: str
) -> None:
    before = snapshot()

    response = send(method, path, fill(template, value))

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\xff\xfe"}',
        b'{"name": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"name": "\xed\xa0\x80"}',  # a surrogate encoded as if it were a character
        b'{"name": "ok"}\xc0',
        b"\xef\xbb\xbf\xff",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/auth/register/"),
        ("post", "/api/v1/auth/token/"),
        ("post", "/api/v1/rooms/"),
        ("patch", "/api/v1/rooms/{room}/"),
        ("post", "/api/v1/rooms/{room}/messages/"),
        ("patch", "/api/v1/messages/{message}/"),
        ("patch", "/api/v1/users/me/"),
    ],
)
def test_invalid_utf8_bodies_are_400(
    owner_client: APIClient, targets: dict[str, int], method: str, path: str, raw: bytes
) -> None:
    before = snapshot()

    call = getattr(owner_client, method)
    response = call(path.format(**targets), raw, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert snapshot() == before


@pytest.mark.parametrize("raw", [b"[]", b"[1, 2]", b'"text"', b"42", b"null", b"true", b""])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/auth/register/"),
        ("post", "/api/v1/auth/token/"),
        ("post", "/api/v1/auth/token/refresh/"),
        ("post", "/api/v1/auth/logout/"),
        ("post", "/api/v1/rooms/"),
        ("patch", "/api/v1/rooms/{room}/"),
        ("post", "/api/v1/rooms/{room}/members/"),
        ("post", "/api/v1/rooms/{room}/read/"),
        ("post", "/api/v1/rooms/{room}/messages/"),
        ("patch", "/api/v1/messages/{message}/"),
        ("patch", "/api/v1/users/me/"),
    ],
)
def test_json_bodies_that_are_not_objects_are_4xx_never_500(
    owner_client: APIClient, targets: dict[str, int], method: str, path: str, raw: bytes
) -> None:
    before = snapshot()

    call = getattr(owner_client, method)
    response = call(path.format(**targets), raw, content_type="application/json")

    # A PATCH of nothing changes nothing (200); anything else is bad input.
    assert response.status_code in (200, 400), response.content
    assert snapshot() == before


# Huge limits --------------------------------------------------------------------

HUGE_LIMITS = ["101", "1000", "2147483648", "9223372036854775808", "1" + "0" * 50]


@pytest.mark.parametrize("limit", HUGE_LIMITS)
def test_a_huge_history_limit_is_clamped_to_100(
    owner_client: APIClient, targets: dict[str, int], owner: User, limit: str
) -> None:
    room = Room.objects.get(pk=targets["room"])
    MessageFactory.create_batch(120, room=room, author=owner)

    response = owner_client.get(f"/api/v1/rooms/{room.pk}/messages/", {"limit": limit})
    after = owner_client.get(f"/api/v1/rooms/{room.pk}/messages/", {"limit": limit, "after": 0})

    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 100
    assert response.json()["next"] is not None
    assert len(after.json()["results"]) == 100


@pytest.mark.parametrize("limit", HUGE_LIMITS)
def test_a_huge_room_or_member_limit_is_clamped_to_100(
    owner_client: APIClient, targets: dict[str, int], owner: User, limit: str
) -> None:
    room = Room.objects.get(pk=targets["room"])
    RoomFactory.create_batch(105)
    users = UserFactory.create_batch(105)
    Membership.objects.bulk_create(Membership(room=room, user=user) for user in users)

    rooms = owner_client.get("/api/v1/rooms/", {"limit": limit})
    members = owner_client.get(f"/api/v1/rooms/{room.pk}/members/", {"limit": limit})

    assert (rooms.status_code, members.status_code) == (200, 200)
    assert len(rooms.json()["results"]) == 100
    assert len(members.json()["results"]) == 100
    assert rooms.json()["next"] is not None
    assert members.json()["next"] is not None


@pytest.mark.parametrize(
    "query",
    ["search=%00", "search=" + "s" * 10_000, "joined=%00", "search=%ED%A0%80", "search=%FF"],
)
def test_hostile_room_list_queries_are_answered_without_a_500(
    owner_client: APIClient, targets: dict[str, int], query: str
) -> None:
    response = owner_client.get(f"/api/v1/rooms/?{query}")

    assert response.status_code in (200, 400), response.content
