from typing import Any

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(settings: Settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"register": "2/hour", "login": "3/minute"},
    }


def client_from(address: str) -> APIClient:
    # Throttles count per client address; each test has its own, so counts never mix.
    return APIClient(REMOTE_ADDR=address)


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429
    assert set(response.json()) == {"detail"}
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.usefixtures("low_rates")
def test_registering_too_often_is_throttled_with_retry_after() -> None:
    client = client_from("198.51.100.1")

    answers = [
        client.post(
            "/api/v1/auth/register/",
            {"username": f"new{n}", "password": "pale-violet-tractor-81"},
            format="json",
        )
        for n in range(3)
    ]

    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert_throttled(answers[2])


@pytest.mark.usefixtures("low_rates")
def test_failed_logins_count_and_then_are_throttled_with_retry_after(user: Any) -> None:
    client = client_from("198.51.100.2")
    body = {"username": user.username, "password": "wrong"}

    answers = [client.post("/api/v1/auth/token/", body, format="json") for _ in range(3)]
    right = client.post(
        "/api/v1/auth/token/",
        {"username": user.username, "password": TEST_PASSWORD},
        format="json",
    )

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert_throttled(right)


@pytest.mark.usefixtures("low_rates")
def test_the_throttle_is_per_client_address(user: Any) -> None:
    body = {"username": user.username, "password": TEST_PASSWORD}
    busy = client_from("198.51.100.3")
    for _ in range(3):
        busy.post("/api/v1/auth/token/", body, format="json")

    other = client_from("198.51.100.4").post("/api/v1/auth/token/", body, format="json")

    assert other.status_code == 200


def test_the_default_test_rates_do_not_throttle(user: Any) -> None:
    client = client_from("198.51.100.5")
    body = {"username": user.username, "password": TEST_PASSWORD}

    codes = {client.post("/api/v1/auth/token/", body, format="json").status_code for _ in range(5)}

    assert codes == {200}
