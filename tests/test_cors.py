"""CORS_ALLOWED_ORIGINS lets named browser frontends call the API, and nobody else."""

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

FRONTEND = "https://app.example"


@override_settings(CORS_ALLOWED_ORIGINS=[FRONTEND])
def test_an_allowed_frontend_gets_the_cors_headers_for_a_preflight() -> None:
    response = Client().options(
        "/api/v1/rooms/",
        HTTP_ORIGIN=FRONTEND,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


@override_settings(CORS_ALLOWED_ORIGINS=[FRONTEND])
def test_another_origin_gets_no_cors_headers() -> None:
    response = Client().get("/api/v1/rooms/", HTTP_ORIGIN="https://evil.example")

    assert "Access-Control-Allow-Origin" not in response
