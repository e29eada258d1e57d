"""A request that forgot its trailing slash keeps its method and body (issue 12).

Django's ``APPEND_SLASH`` answers 301, which clients re-send as a GET without the body:
a POST to ``/api/v1/rooms`` used to list the rooms instead of creating one.
"""

import pytest
from rest_framework.test import APIClient

from rooms.models import Room

pytestmark = pytest.mark.django_db


def test_a_post_without_its_slash_is_redirected_with_308_to_the_slashed_path(
    auth_client: APIClient,
) -> None:
    response = auth_client.post("/api/v1/rooms?x=1", {"name": "slashless"}, format="json")

    assert response.status_code == 308
    assert response["Location"] == "/api/v1/rooms/?x=1"
    assert not Room.objects.exists()


def test_a_client_that_follows_the_redirect_creates_the_room(auth_client: APIClient) -> None:
    response = auth_client.post("/api/v1/rooms", {"name": "slashless"}, format="json", follow=True)

    assert response.redirect_chain == [("/api/v1/rooms/", 308)]
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "slashless"
    assert Room.objects.filter(name="slashless").exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_writes_without_their_slash_keep_their_method(
    auth_client: APIClient, room: Room, method: str
) -> None:
    response = getattr(auth_client, method)(f"/api/v1/rooms/{room.pk}", {}, format="json")

    assert response.status_code == 308
    assert response["Location"] == f"/api/v1/rooms/{room.pk}/"


def test_a_post_without_its_slash_is_kept_in_debug_mode_too(
    auth_client: APIClient, settings: object
) -> None:
    settings.DEBUG = True  # type: ignore[attr-defined]  # Django raises RuntimeError there

    response = auth_client.post("/api/v1/rooms", {"name": "slashless"}, format="json")

    assert response.status_code == 308


def test_a_get_without_its_slash_still_gets_the_permanent_redirect(
    auth_client: APIClient,
) -> None:
    response = auth_client.get("/api/v1/rooms")

    assert response.status_code == 301
    assert response["Location"] == "/api/v1/rooms/"
