"""Room names are unique among public channels only (API.md, Rooms): private rooms may
share a name, so a clash never reveals a private room; making a private room public
under a taken name is a 400."""

from collections.abc import Callable
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from common.text import fold_case
from rooms.models import Room
from rooms.selectors import room_name_taken
from rooms.services import room_create, room_update
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], APIClient]
ROOMS = "/api/v1/rooms/"
NAME_TAKEN = {"name": ["A room with that name already exists."]}
FOLDED_PAIRS = [("General", "gENERAL"), ("Straße", "STRASSE"), ("ΣΊΣΥΦΟΣ", "σίσυφος")]


def room_url(room: Room) -> str:
    return f"{ROOMS}{room.pk}/"


# API


@pytest.mark.parametrize(("first", "second"), FOLDED_PAIRS)
@pytest.mark.parametrize("first_visibility", ["public", "private"])
def test_a_private_room_may_share_a_name_with_any_room(
    auth_client: APIClient, first: str, second: str, first_visibility: str
) -> None:
    RoomFactory.create(name=first, visibility=first_visibility)

    response = auth_client.post(ROOMS, {"name": second, "visibility": "private"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == second
    assert Room.objects.count() == 2


@pytest.mark.parametrize(("first", "second"), FOLDED_PAIRS)
def test_a_public_channel_may_take_a_name_only_a_private_room_has(
    auth_client: APIClient, first: str, second: str
) -> None:
    RoomFactory.create(name=first, visibility="private")  # someone else's, unseen

    response = auth_client.post(ROOMS, {"name": second}, format="json")

    assert response.status_code == 201, response.content  # no leak
    assert Room.objects.filter(visibility="public").get().name == second


def test_a_public_channel_under_a_public_channels_name_is_still_a_400(
    auth_client: APIClient,
) -> None:
    RoomFactory.create(name="Straße", visibility="private")
    RoomFactory.create(name="Straße")

    response = auth_client.post(ROOMS, {"name": "STRASSE"}, format="json")

    assert response.status_code == 400
    assert response.json() == NAME_TAKEN
    assert Room.objects.count() == 2


def test_a_private_room_may_be_renamed_to_a_public_channels_name(
    auth_client: APIClient, owner: User
) -> None:
    RoomFactory.create(name="General")
    private = RoomFactory.create(owner=owner, visibility="private")

    response = auth_client.patch(room_url(private), {"name": "GENERAL"}, format="json")

    assert response.status_code == 200, response.content
    private.refresh_from_db()
    assert (private.name, private.visibility) == ("GENERAL", "private")


@pytest.mark.parametrize(
    "body", [{"visibility": "public"}, {"name": "STRASSE", "visibility": "public"}]
)
def test_making_a_private_room_public_under_a_taken_name_is_a_400(
    auth_client: APIClient, owner: User, body: dict[str, str]
) -> None:
    RoomFactory.create(name="Straße")
    private = RoomFactory.create(owner=owner, name="strasse", topic="kept", visibility="private")

    response = auth_client.patch(room_url(private), body, format="json")

    assert response.status_code == 400
    assert response.json() == NAME_TAKEN
    private.refresh_from_db()
    assert (private.name, private.topic, private.visibility) == ("strasse", "kept", "private")


def test_making_a_private_room_public_under_a_free_name_works(
    auth_client: APIClient, owner: User
) -> None:
    RoomFactory.create(name="Straße", visibility="private")  # private names do not count
    private = RoomFactory.create(owner=owner, name="STRASSE", visibility="private")

    response = auth_client.patch(room_url(private), {"visibility": "public"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["visibility"] == "public"


def test_making_a_public_channel_private_frees_its_name(
    auth_client: APIClient, owner: User
) -> None:
    room = RoomFactory.create(owner=owner, name="General")
    taken = auth_client.post(ROOMS, {"name": "general"}, format="json")

    made_private = auth_client.patch(room_url(room), {"visibility": "private"}, format="json")
    created = auth_client.post(ROOMS, {"name": "general"}, format="json")
    back_to_public = auth_client.patch(room_url(room), {"visibility": "public"}, format="json")

    assert taken.status_code == 400
    assert made_private.status_code == 200, made_private.content
    assert created.status_code == 201, created.content
    assert back_to_public.status_code == 400  # the name is the new channel's now
    assert back_to_public.json() == NAME_TAKEN
    room.refresh_from_db()
    assert room.visibility == "private"


def test_a_clash_answers_alike_whoever_owns_the_private_rooms(
    client_for: ClientFor, outsider: User, private_room: Room
) -> None:
    """An outsider learns nothing: a private room's name is simply free to them."""
    client = client_for(outsider)

    as_private = client.post(
        ROOMS, {"name": private_room.name, "visibility": "private"}, format="json"
    )
    as_public = client.post(ROOMS, {"name": private_room.name.upper()}, format="json")

    assert (as_private.status_code, as_public.status_code) == (201, 201)


# SELECTOR AND SERVICES


def test_room_name_taken_counts_public_rooms_only(db: None) -> None:
    private = RoomFactory.create(name="Straße", visibility="private")

    assert not room_name_taken(name="STRASSE")
    public = RoomFactory.create(name="strasse")
    assert room_name_taken(name="STRASSE")
    assert room_name_taken(name="STRASSE", exclude_pk=private.pk)
    assert not room_name_taken(name="STRASSE", exclude_pk=public.pk)


def test_room_create_of_a_private_room_skips_the_name_check(user: User) -> None:
    RoomFactory.create(name="General")

    with mock.patch("rooms.services.room_name_taken") as taken:
        room = room_create(name="general", visibility="private", owner=user)

    taken.assert_not_called()
    assert room.visibility == "private"


def test_room_update_to_public_under_a_taken_name_is_a_field_error(user: User) -> None:
    RoomFactory.create(name="General")
    private = room_create(name="general", visibility="private", owner=user)

    with pytest.raises(ValidationError) as caught:
        room_update(room=private, by=user, visibility="public")

    assert caught.value.message_dict == NAME_TAKEN
    private.refresh_from_db()
    assert private.visibility == "private"


def test_room_update_to_public_that_loses_a_race_on_the_name_is_a_field_error(
    user: User,
) -> None:
    RoomFactory.create(name="General")
    private = room_create(name="general", visibility="private", owner=user)

    # The check before the update sees no clash (the other channel has not committed
    # yet); the database constraint, public rooms only, then refuses the row.
    with (
        mock.patch("rooms.services.room_name_taken", side_effect=[False, True]),
        pytest.raises(ValidationError) as caught,
    ):
        room_update(room=private, by=user, visibility="public")

    assert caught.value.message_dict == NAME_TAKEN
    private.refresh_from_db()
    assert private.visibility == "private"


# THE DATABASE CONSTRAINT


@pytest.mark.parametrize(("first", "second"), FOLDED_PAIRS)
def test_the_constraint_refuses_two_public_rooms_with_one_folded_name(
    user: User, first: str, second: str
) -> None:
    Room.objects.create(name=first, owner=user)

    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(name=second, owner=user)

    assert Room.objects.count() == 1


@pytest.mark.parametrize(("first", "second"), FOLDED_PAIRS)
def test_the_constraint_allows_private_rooms_to_share_a_folded_name(
    user: User, first: str, second: str
) -> None:
    Room.objects.create(name=first, owner=user)
    Room.objects.create(name=second, owner=user, visibility="private")
    Room.objects.create(name=first, owner=user, visibility="private")

    assert Room.objects.filter(name_folded=fold_case(second)).count() == 3


def test_the_constraint_refuses_making_a_room_public_under_a_taken_name(user: User) -> None:
    Room.objects.create(name="General", owner=user)
    private = Room.objects.create(name="general", owner=user, visibility="private")

    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.filter(pk=private.pk).update(visibility="public")

    private.refresh_from_db()
    assert private.visibility == "private"


# ADMIN


def admin_add(admin_client: Client, owner: User, **fields: str) -> HttpResponse:
    return admin_client.post(
        "/admin/rooms/room/add/",
        {
            "topic": "",
            "visibility": "public",
            "owner": owner.pk,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            **fields,
        },
    )


def admin_change(admin_client: Client, room: Room, **fields: str) -> HttpResponse:
    return admin_client.post(
        f"/admin/rooms/room/{room.pk}/change/",
        {
            "name": room.name,
            "topic": room.topic,
            "visibility": room.visibility,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": room.memberships.get().pk,
            "memberships-0-room": room.pk,
            **fields,
        },
    )


def test_the_admin_adds_a_private_room_under_a_public_channels_name(
    admin_client: Client, user: User
) -> None:
    RoomFactory.create(name="Straße")

    response = admin_add(admin_client, user, name="STRASSE", visibility="private")

    assert response.status_code == 302, response.content
    assert Room.objects.filter(name="STRASSE", visibility="private").exists()


def test_the_admin_adds_a_public_channel_under_a_private_rooms_name(
    admin_client: Client, user: User
) -> None:
    RoomFactory.create(name="Straße", visibility="private")

    response = admin_add(admin_client, user, name="STRASSE")

    assert response.status_code == 302, response.content
    assert Room.objects.filter(name="STRASSE", visibility="public").exists()


def test_the_admin_refuses_to_make_a_room_public_under_a_taken_name(
    admin_client: Client, user: User
) -> None:
    RoomFactory.create(name="Straße")
    private = RoomFactory.create(name="strasse", owner=user, visibility="private")

    response = admin_change(admin_client, private, visibility="public")

    assert response.status_code == 200  # the form again, with the error on the name
    assert response.context["adminform"].form.errors == NAME_TAKEN
    private.refresh_from_db()
    assert private.visibility == "private"


def test_the_admin_renames_a_private_room_to_a_public_channels_name(
    admin_client: Client, user: User
) -> None:
    RoomFactory.create(name="Straße")
    private = RoomFactory.create(owner=user, visibility="private")

    response = admin_change(admin_client, private, name="STRASSE")

    assert response.status_code == 302, response.content
    private.refresh_from_db()
    assert private.name == "STRASSE"
