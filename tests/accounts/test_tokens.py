from datetime import timedelta
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
ME_URL = "/api/v1/users/me/"


def obtain(client: APIClient, username: str, password: str = TEST_PASSWORD) -> Any:
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def refresh_with(client: APIClient, refresh: str) -> Any:
    return client.post(REFRESH_URL, {"refresh": refresh}, format="json")


def me_with(client: APIClient, token: str) -> Any:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(ME_URL)


# Token obtain


def test_token_obtain_returns_a_working_access_and_refresh_pair(
    api_client: APIClient, user: User
) -> None:
    response = obtain(api_client, user.username)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert me_with(api_client, body["access"]).json()["id"] == user.pk


def test_token_obtain_accepts_the_username_in_another_case(api_client: APIClient) -> None:
    user = UserFactory.create(username="MixedCase")

    response = obtain(api_client, "mIXEDcASE")

    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_wrong_password_unknown_user_and_inactive_user_get_the_same_401(
    api_client: APIClient, user: User
) -> None:
    inactive = UserFactory.create(is_active=False)

    wrong_password = obtain(api_client, user.username, "not-the-password")
    unknown_user = obtain(api_client, "nobody-here")
    inactive_user = obtain(api_client, inactive.username)

    assert wrong_password.status_code == 401
    assert unknown_user.status_code == 401
    assert inactive_user.status_code == 401
    assert wrong_password.json() == unknown_user.json() == inactive_user.json()
    assert set(wrong_password.json()) == {"detail"}


def test_token_obtain_without_a_password_is_a_400(api_client: APIClient, user: User) -> None:
    response = api_client.post(TOKEN_URL, {"username": user.username}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"password"}


def test_token_obtain_ignores_a_stale_authorization_header(
    api_client: APIClient, user: User
) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired-or-garbage")

    assert obtain(api_client, user.username).status_code == 200


# Refresh and rotation


def test_refresh_rotates_and_the_used_refresh_token_is_then_refused(
    api_client: APIClient, user: User
) -> None:
    old_refresh = obtain(api_client, user.username).json()["refresh"]

    rotated = refresh_with(api_client, old_refresh)
    reused = refresh_with(api_client, old_refresh)

    assert rotated.status_code == 200
    new_pair = rotated.json()
    assert set(new_pair) == {"access", "refresh"}
    assert new_pair["refresh"] != old_refresh
    assert me_with(api_client, new_pair["access"]).status_code == 200
    assert reused.status_code == 401


def test_the_rotated_refresh_token_refreshes_again(api_client: APIClient, user: User) -> None:
    first = obtain(api_client, user.username).json()["refresh"]
    second = refresh_with(api_client, first).json()["refresh"]

    assert refresh_with(api_client, second).status_code == 200


def test_an_access_token_cannot_be_used_to_refresh(api_client: APIClient, user: User) -> None:
    response = refresh_with(api_client, str(AccessToken.for_user(user)))

    assert response.status_code == 401


def test_a_garbage_refresh_token_is_a_401(api_client: APIClient) -> None:
    assert refresh_with(api_client, "garbage").status_code == 401


def test_an_inactive_user_cannot_refresh(api_client: APIClient, user: User) -> None:
    refresh = str(RefreshToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert refresh_with(api_client, refresh).status_code == 401


def test_a_deleted_user_cannot_refresh_and_gets_401_not_500(
    api_client: APIClient, user: User
) -> None:
    refresh = str(RefreshToken.for_user(user))
    user.delete()

    assert refresh_with(api_client, refresh).status_code == 401


# Which access tokens authenticate


def test_no_authorization_header_is_a_401_with_www_authenticate(api_client: APIClient) -> None:
    response = api_client.get(ME_URL)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_refresh_token_used_as_bearer_is_a_401(api_client: APIClient, user: User) -> None:
    assert me_with(api_client, str(RefreshToken.for_user(user))).status_code == 401


def test_a_token_signed_with_another_key_is_a_401(api_client: APIClient, user: User) -> None:
    payload = AccessToken.for_user(user).payload
    forged = jwt.encode(payload, "some-other-key-of-sufficient-length", algorithm="HS256")

    assert me_with(api_client, forged).status_code == 401


def test_a_token_with_alg_none_is_a_401(api_client: APIClient, user: User) -> None:
    payload = AccessToken.for_user(user).payload
    unsigned = jwt.encode(payload, None, algorithm="none")

    assert me_with(api_client, unsigned).status_code == 401


def test_a_token_with_the_right_key_is_accepted(api_client: APIClient, user: User) -> None:
    # The control for the two forgeries above: the same payload, signed properly.
    payload = AccessToken.for_user(user).payload
    signed = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")

    assert me_with(api_client, signed).status_code == 200


def test_an_expired_access_token_is_a_401(api_client: APIClient, user: User) -> None:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=-1))

    assert me_with(api_client, str(token)).status_code == 401


def test_an_inactive_users_existing_access_token_is_a_401(
    api_client: APIClient, user: User
) -> None:
    access = str(AccessToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert me_with(api_client, access).status_code == 401


def test_a_deleted_users_access_token_is_a_401(api_client: APIClient, user: User) -> None:
    access = str(AccessToken.for_user(user))
    user.delete()

    assert me_with(api_client, access).status_code == 401


def test_a_non_bearer_scheme_is_a_401(api_client: APIClient, user: User) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {AccessToken.for_user(user)}")

    assert api_client.get(ME_URL).status_code == 401
