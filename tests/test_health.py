from unittest import mock

import pytest
from channels.layers import get_channel_layer
from django.db import OperationalError
from django.test import Client

# The database check runs in a worker thread, which must see a real database.
pytestmark = pytest.mark.django_db(transaction=True)


def test_health_is_200_when_database_and_channel_layer_answer(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


def test_health_needs_no_authentication_and_ignores_a_bad_token(client: Client) -> None:
    response = client.get("/healthz", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200


def test_health_is_503_naming_the_channel_layer_when_it_fails(client: Client) -> None:
    layer = get_channel_layer()
    with mock.patch.object(layer, "send", side_effect=ConnectionError("layer down")):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "channel_layer": "unavailable",
    }


def test_health_is_503_naming_the_database_when_it_fails(client: Client) -> None:
    with mock.patch("config.health._check_database", side_effect=OperationalError("db down")):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unavailable",
        "channel_layer": "ok",
    }
