"""Logins, the admin's included: per address, and failed ones per username and address.

API.md, Limits: "Logins, the admin's login included, are throttled per address, and
failed ones also per username and address, each with a setting of its own."
"""

from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"


def rates(settings: Settings, **overrides: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **overrides,
        },
    }


@pytest.fixture
def staff(db: None) -> User:
    return UserFactory.create(is_staff=True, is_superuser=True)


def admin_login(address: str, username: str, password: str) -> Any:
    return Client(REMOTE_ADDR=address).post(
        ADMIN_LOGIN, {"username": username, "password": password, "next": "/admin/"}
    )


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_failed_admin_logins_lock_out_that_username_from_that_address(
    settings: Settings, staff: User
) -> None:
    rates(settings, login_failed="3/hour")
    other_staff = UserFactory.create(is_staff=True, is_superuser=True)

    failed = [admin_login("203.0.113.1", staff.username, "guess") for _ in range(3)]
    right_password = admin_login("203.0.113.1", staff.username, TEST_PASSWORD)
    other_case = admin_login("203.0.113.1", staff.username.upper(), TEST_PASSWORD)

    assert [response.status_code for response in failed] == [200, 200, 200]  # the form again
    assert_throttled(right_password)
    assert_throttled(other_case)
    # Another username from another address, and the same one from elsewhere, log in.
    assert admin_login("203.0.113.2", other_staff.username, TEST_PASSWORD).status_code == 302
    assert admin_login("203.0.113.3", staff.username, TEST_PASSWORD).status_code == 302


def test_admin_logins_are_throttled_per_address(settings: Settings, staff: User) -> None:
    rates(settings, login="2/minute")

    answers = [admin_login("203.0.113.4", staff.username, TEST_PASSWORD) for _ in range(3)]

    assert [response.status_code for response in answers[:2]] == [302, 302]
    assert_throttled(answers[2])
    assert admin_login("203.0.113.5", staff.username, TEST_PASSWORD).status_code == 302


def test_the_admin_login_page_itself_is_not_throttled(settings: Settings) -> None:
    rates(settings, login="1/minute")
    client = Client(REMOTE_ADDR="203.0.113.6")

    assert {client.get(ADMIN_LOGIN).status_code for _ in range(3)} == {200}


def test_failed_api_logins_lock_out_that_username_from_that_address(
    settings: Settings, user: User, other_user: User
) -> None:
    rates(settings, login_failed="2/hour")
    client = APIClient(REMOTE_ADDR="203.0.113.7")

    failed = [
        client.post(TOKEN, {"username": user.username, "password": "guess"}, format="json")
        for _ in range(2)
    ]
    right = client.post(
        TOKEN, {"username": user.username, "password": TEST_PASSWORD}, format="json"
    )
    other_user_here = client.post(
        TOKEN, {"username": other_user.username, "password": TEST_PASSWORD}, format="json"
    )
    same_user_elsewhere = APIClient(REMOTE_ADDR="203.0.113.8").post(
        TOKEN, {"username": user.username, "password": TEST_PASSWORD}, format="json"
    )

    assert [response.status_code for response in failed] == [401, 401]
    assert_throttled(right)
    assert set(right.json()) >= {"detail"}
    assert other_user_here.status_code == 200
    assert same_user_elsewhere.status_code == 200


def test_failed_logins_on_the_admin_and_the_api_count_together(
    settings: Settings, staff: User
) -> None:
    rates(settings, login_failed="2/hour")
    admin_login("203.0.113.9", staff.username, "guess")
    APIClient(REMOTE_ADDR="203.0.113.9").post(
        TOKEN, {"username": staff.username, "password": "guess"}, format="json"
    )

    assert_throttled(admin_login("203.0.113.9", staff.username, TEST_PASSWORD))
