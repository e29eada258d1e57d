from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User

pytestmark = pytest.mark.django_db

LOGOUT_URL = "/api/v1/auth/logout/"
REFRESH_URL = "/api/v1/auth/token/refresh/"


def logout(client: APIClient, refresh: str) -> Any:
    return client.post(LOGOUT_URL, {"refresh": refresh}, format="json")


def refresh_with(client: APIClient, refresh: str) -> Any:
    return client.post(REFRESH_URL, {"refresh": refresh}, format="json")


def test_logout_answers_204_and_the_refresh_token_no_longer_refreshes(
    auth_client: APIClient, user: User
) -> None:
    refresh = str(RefreshToken.for_user(user))

    response = logout(auth_client, refresh)

    assert response.status_code == 204
    assert response.content == b""
    assert refresh_with(APIClient(), refresh).status_code == 401


def test_logout_leaves_the_users_other_sessions_alone(auth_client: APIClient, user: User) -> None:
    phone = str(RefreshToken.for_user(user))
    laptop = str(RefreshToken.for_user(user))

    logout(auth_client, phone)

    assert refresh_with(APIClient(), laptop).status_code == 200


def test_logout_requires_authentication(api_client: APIClient, user: User) -> None:
    refresh = str(RefreshToken.for_user(user))

    response = logout(api_client, refresh)

    assert response.status_code == 401
    assert refresh_with(api_client, refresh).status_code == 200


def test_a_refresh_token_of_another_user_is_a_403_and_stays_valid(
    auth_client: APIClient, other_user: User
) -> None:
    theirs = str(RefreshToken.for_user(other_user))

    response = logout(auth_client, theirs)

    assert response.status_code == 403
    assert set(response.json()) == {"detail"}
    assert refresh_with(APIClient(), theirs).status_code == 200


@pytest.mark.parametrize("refresh", ["", "garbage", "a.b.c"])
def test_an_invalid_refresh_token_is_a_400_on_the_refresh_field(
    auth_client: APIClient, refresh: str
) -> None:
    response = logout(auth_client, refresh)

    assert response.status_code == 400
    assert set(response.json()) == {"refresh"}


def test_an_access_token_in_place_of_the_refresh_token_is_a_400(
    auth_client: APIClient, user: User
) -> None:
    response = logout(auth_client, str(AccessToken.for_user(user)))

    assert response.status_code == 400
    assert set(response.json()) == {"refresh"}


def test_logging_out_twice_with_one_token_is_a_400(auth_client: APIClient, user: User) -> None:
    refresh = str(RefreshToken.for_user(user))
    logout(auth_client, refresh)

    response = logout(auth_client, refresh)

    assert response.status_code == 400
    assert set(response.json()) == {"refresh"}
