import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ME_URL = "/api/v1/users/me/"


def test_me_returns_the_full_user(auth_client: APIClient, user: User) -> None:
    response = auth_client.get(ME_URL)

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
    }


def test_me_requires_authentication(api_client: APIClient) -> None:
    assert api_client.get(ME_URL).status_code == 401
    assert api_client.patch(ME_URL, {"display_name": "x"}, format="json").status_code == 401


def test_patching_me_changes_the_display_name(auth_client: APIClient, user: User) -> None:
    response = auth_client.patch(ME_URL, {"display_name": "New Name"}, format="json")

    assert response.status_code == 200
    assert response.json()["display_name"] == "New Name"
    assert set(response.json()) == {"id", "username", "display_name", "date_joined"}
    user.refresh_from_db()
    assert user.display_name == "New Name"


def test_patching_me_cannot_change_the_username_or_id(auth_client: APIClient, user: User) -> None:
    original = user.username

    response = auth_client.patch(
        ME_URL, {"username": "hijack", "id": 999, "display_name": "ok"}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.username, response.json()["id"]) == (original, user.pk)


@pytest.mark.parametrize("display_name", ["bell\x07", "escape\x1b[0m", "line\nbreak", "\x00"])
def test_patching_me_with_control_characters_is_a_400(
    auth_client: APIClient, user: User, display_name: str
) -> None:
    before = user.display_name

    response = auth_client.patch(ME_URL, {"display_name": display_name}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"display_name"}
    user.refresh_from_db()
    assert user.display_name == before


def test_patching_me_with_a_display_name_over_64_characters_is_a_400(
    auth_client: APIClient,
) -> None:
    response = auth_client.patch(ME_URL, {"display_name": "x" * 65}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"display_name"}


def test_patching_me_with_an_empty_display_name_falls_back_to_the_username(
    auth_client: APIClient, user: User
) -> None:
    response = auth_client.patch(ME_URL, {"display_name": "   "}, format="json")

    assert response.status_code == 200
    assert response.json()["display_name"] == user.username


def test_put_on_me_is_not_allowed(auth_client: APIClient) -> None:
    response = auth_client.put(ME_URL, {"display_name": "x"}, format="json")

    assert response.status_code == 405


def test_a_user_by_id_is_the_brief_user(auth_client: APIClient) -> None:
    someone = UserFactory.create(username="someone", display_name="Some One")

    response = auth_client.get(f"/api/v1/users/{someone.pk}/")

    assert response.status_code == 200
    assert response.json() == {"id": someone.pk, "username": "someone", "display_name": "Some One"}


def test_an_unknown_user_id_is_a_404(auth_client: APIClient) -> None:
    response = auth_client.get("/api/v1/users/999999/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_a_user_by_id_requires_authentication(api_client: APIClient, user: User) -> None:
    assert api_client.get(f"/api/v1/users/{user.pk}/").status_code == 401
