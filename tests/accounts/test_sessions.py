"""Ending every session: a password change and "log out everywhere" revoke every token."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

PASSWORD_URL = "/api/v1/users/me/password/"
LOGOUT_ALL_URL = "/api/v1/auth/logout/all/"
NEW_PASSWORD = "pale-violet-tractor-81"


def log_in(user: User, password: str = TEST_PASSWORD) -> dict[str, str]:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def me(access: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return int(client.get("/api/v1/users/me/").status_code)


def refresh(token: str) -> Any:
    return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")


def post_as(access: str, url: str, body: dict[str, Any] | None = None) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.post(url, body or {}, format="json")


def change_password(access: str, old: str, new: str) -> Any:
    return post_as(access, PASSWORD_URL, {"old_password": old, "new_password": new})


def test_a_password_change_ends_every_session_and_the_new_password_logs_in(user: User) -> None:
    phone, laptop = log_in(user), log_in(user)

    response = change_password(phone["access"], TEST_PASSWORD, NEW_PASSWORD)

    assert response.status_code == 204
    assert response.content == b""
    for pair in (phone, laptop):
        assert me(pair["access"]) == 401
        assert refresh(pair["refresh"]).status_code == 401
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert (
        APIClient()
        .post("/api/v1/auth/token/", {"username": user.username, "password": TEST_PASSWORD})
        .status_code
        == 401
    )
    # Logging in again at once (within the same second as the change) works.
    fresh = log_in(user, NEW_PASSWORD)
    assert me(fresh["access"]) == 200
    assert refresh(fresh["refresh"]).status_code == 200


def test_a_token_refreshed_before_the_change_is_revoked_too(user: User) -> None:
    first = log_in(user)
    rotated = refresh(first["refresh"]).json()

    change_password(first["access"], TEST_PASSWORD, NEW_PASSWORD)

    assert me(rotated["access"]) == 401
    assert refresh(rotated["refresh"]).status_code == 401


def test_a_wrong_old_password_is_a_400_on_that_field_and_ends_nothing(user: User) -> None:
    pair = log_in(user)

    response = change_password(pair["access"], "not-the-password", NEW_PASSWORD)

    assert response.status_code == 400
    assert set(response.json()) == {"old_password"}
    assert me(pair["access"]) == 200
    user.refresh_from_db()
    assert user.check_password(TEST_PASSWORD)


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123"])
def test_a_weak_new_password_is_a_400_on_that_field_and_ends_nothing(user: User, weak: str) -> None:
    pair = log_in(user)

    response = change_password(pair["access"], TEST_PASSWORD, weak)

    assert response.status_code == 400
    assert set(response.json()) == {"new_password"}
    assert me(pair["access"]) == 200


def test_both_fields_are_required(user: User) -> None:
    response = post_as(log_in(user)["access"], PASSWORD_URL, {})

    assert response.status_code == 400
    assert set(response.json()) == {"old_password", "new_password"}


def test_logging_out_everywhere_revokes_every_token_and_keeps_the_password(user: User) -> None:
    phone, laptop = log_in(user), log_in(user)

    response = post_as(laptop["access"], LOGOUT_ALL_URL)

    assert response.status_code == 204
    for pair in (phone, laptop):
        assert me(pair["access"]) == 401
        assert refresh(pair["refresh"]).status_code == 401
    fresh = log_in(user)  # the same password, within the same second
    assert me(fresh["access"]) == 200
    assert refresh(fresh["refresh"]).status_code == 200


def test_logging_out_everywhere_leaves_other_users_alone(user: User, other_user: User) -> None:
    mine, theirs = log_in(user), log_in(other_user)

    post_as(mine["access"], LOGOUT_ALL_URL)

    assert me(theirs["access"]) == 200
    assert refresh(theirs["refresh"]).status_code == 200


@pytest.mark.parametrize("url", [PASSWORD_URL, LOGOUT_ALL_URL])
def test_both_need_authentication(url: str) -> None:
    assert APIClient().post(url, {}, format="json").status_code == 401


def test_a_revoked_access_token_cannot_end_sessions_again(user: User) -> None:
    pair = log_in(user)
    post_as(pair["access"], LOGOUT_ALL_URL)

    assert post_as(pair["access"], LOGOUT_ALL_URL).status_code == 401
    assert change_password(pair["access"], TEST_PASSWORD, NEW_PASSWORD).status_code == 401
