from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/auth/register/"
STRONG_PASSWORD = "pale-violet-tractor-81"


def register(client: APIClient, **overrides: Any) -> Any:
    body = {"username": "alice", "password": STRONG_PASSWORD, **overrides}
    return client.post(URL, body, format="json")


def test_register_creates_the_user_and_answers_201_with_user_and_tokens(
    api_client: APIClient,
) -> None:
    response = register(api_client, display_name="Alice A.")

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get(username="alice")
    assert body["user"] == {
        "id": user.pk,
        "username": "alice",
        "display_name": "Alice A.",
        "date_joined": body["user"]["date_joined"],
    }
    assert body["user"]["date_joined"].endswith("Z")
    assert set(body) == {"user", "access", "refresh"}
    assert user.check_password(STRONG_PASSWORD)
    assert user.is_active


def test_register_returns_an_access_token_that_authenticates(api_client: APIClient) -> None:
    access = register(api_client).json()["access"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api_client.get("/api/v1/users/me/")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_register_returns_a_refresh_token_that_refreshes(api_client: APIClient) -> None:
    refresh = register(api_client).json()["refresh"]

    response = api_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")

    assert response.status_code == 200


def test_display_name_defaults_to_the_username(api_client: APIClient) -> None:
    response = register(api_client, username="Bob_the.builder")

    assert response.json()["user"]["display_name"] == "Bob_the.builder"


def test_a_username_taken_in_another_case_is_refused_on_the_username_field(
    api_client: APIClient,
) -> None:
    UserFactory.create(username="alice")

    response = register(api_client, username="ALICE")

    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}
    assert User.objects.count() == 1


def test_a_weak_password_is_refused_on_the_password_field(api_client: APIClient) -> None:
    response = register(api_client, password="12345")

    assert response.status_code == 400
    assert set(response.json()) == {"password"}
    assert not User.objects.exists()


def test_a_password_like_the_username_is_refused(api_client: APIClient) -> None:
    response = register(api_client, username="marguerite", password="marguerite1")

    assert response.status_code == 400
    assert "too similar" in response.json()["password"][0]


@pytest.mark.parametrize("username", ["bad name", "semi;colon", "slash/", "", "x" * 151])
def test_a_username_outside_the_allowed_form_is_refused(
    api_client: APIClient, username: str
) -> None:
    response = register(api_client, username=username)

    assert response.status_code == 400
    assert set(response.json()) == {"username"}


def test_a_username_of_150_allowed_characters_is_accepted(api_client: APIClient) -> None:
    username = ("a.b+c-d_e@" * 15)[:150]

    response = register(api_client, username=username)

    assert response.status_code == 201
    # The default display name keeps within its own 64-character limit.
    assert response.json()["user"]["display_name"] == username[:64]


@pytest.mark.parametrize("display_name", ["bell\x07", "nul\x00", "new\nline", "tab\there"])
def test_control_characters_in_display_name_are_refused(
    api_client: APIClient, display_name: str
) -> None:
    response = register(api_client, display_name=display_name)

    assert response.status_code == 400
    assert set(response.json()) == {"display_name"}


def test_a_display_name_over_64_characters_is_refused(api_client: APIClient) -> None:
    response = register(api_client, display_name="x" * 65)

    assert response.status_code == 400
    assert set(response.json()) == {"display_name"}


def test_a_display_name_of_64_characters_is_accepted(api_client: APIClient) -> None:
    response = register(api_client, display_name="é" * 64)

    assert response.status_code == 201


def test_missing_fields_are_reported_together(api_client: APIClient) -> None:
    response = api_client.post(URL, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_every_bad_field_is_reported_at_once(api_client: APIClient) -> None:
    UserFactory.create(username="alice")

    response = register(api_client, password="123", display_name="\x1b[31m")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password", "display_name"}


def test_a_stale_authorization_header_does_not_block_registration(
    api_client: APIClient,
) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = register(api_client)

    assert response.status_code == 201


def test_losing_a_race_for_the_username_answers_400_not_500(api_client: APIClient) -> None:
    # Both requests passed the uniqueness checks; the other one committed first. The
    # case-insensitive unique constraint in the database has the final word.
    def competitor_commits(user: User, *args: object, **kwargs: object) -> None:
        UserFactory.create(username=user.username.upper())

    with mock.patch.object(User, "full_clean", autospec=True, side_effect=competitor_commits):
        response = register(api_client, username="racer")

    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}
    assert list(User.objects.values_list("username", flat=True)) == ["RACER"]
