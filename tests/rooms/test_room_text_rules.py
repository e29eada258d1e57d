"""Room names and topics under Unicode (API.md, Accounts and Rooms, v2)."""

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from rooms.models import Room
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], APIClient]
ROOMS = "/api/v1/rooms/"
FORMAT_CHARACTERS = ["\u200b", "\u202e", "\ufeff", "\u2066", "\u00ad"]


@pytest.mark.parametrize(
    ("first", "second"), [("Äpfel", "äpfel"), ("Straße", "STRASSE"), ("ΣΊΣΥΦΟΣ", "σίσυφος")]
)
def test_a_room_name_taken_under_unicode_case_folding_is_refused(
    auth_client: APIClient, first: str, second: str
) -> None:
    assert auth_client.post(ROOMS, {"name": first}, format="json").status_code == 201

    response = auth_client.post(ROOMS, {"name": second}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"name"}
    assert Room.objects.count() == 1


def test_renaming_to_a_name_taken_under_case_folding_is_refused(
    auth_client: APIClient, room: Room
) -> None:
    auth_client.post(ROOMS, {"name": "Äpfel"}, format="json")

    response = auth_client.patch(f"{ROOMS}{room.pk}/", {"name": "ÄPFEL"}, format="json")
    own = auth_client.patch(f"{ROOMS}{room.pk}/", {"name": room.name.upper()}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"name"}
    assert own.status_code == 200  # its own name in another case is no clash


@pytest.mark.parametrize("character", FORMAT_CHARACTERS)
@pytest.mark.parametrize("field", ["name", "topic"])
def test_a_format_character_in_a_room_name_or_topic_is_refused(
    auth_client: APIClient, room: Room, character: str, field: str
) -> None:
    body = {"name": "fine", field: f"gen{character}eral"}

    created = auth_client.post(ROOMS, body, format="json")
    patched = auth_client.patch(f"{ROOMS}{room.pk}/", {field: f"x{character}"}, format="json")

    assert created.status_code == 400
    assert set(created.json()) == {field}
    assert patched.status_code == 400
    assert set(patched.json()) == {field}


def test_joiners_are_allowed_in_a_room_name(auth_client: APIClient) -> None:
    name = "\U0001f468\u200d\U0001f4bb devs"

    response = auth_client.post(
        ROOMS,
        {"name": name, "topic": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["name"] == name


def test_the_admin_refuses_a_room_name_taken_under_case_folding(
    admin_client: Client, user: User
) -> None:
    RoomFactory.create(name="Straße")

    response = admin_client.post(
        "/admin/rooms/room/add/",
        {
            "name": "STRASSE",
            "topic": "",
            "visibility": "public",
            "owner": user.pk,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert b"A room with that name already exists." in response.content
    assert Room.objects.count() == 1
