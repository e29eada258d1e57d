"""The web client is served at ``/`` by WhiteNoise, inside the async middleware chain."""

from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.test import AsyncClient

from config.asgi import application


async def test_the_web_client_is_served_at_the_root(async_client: AsyncClient) -> None:
    response = await async_client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = b"".join(response.streaming_content)
    assert b"<!doctype html>" in body.lower()


@pytest.mark.django_db
async def test_other_requests_pass_through_to_the_api(async_client: AsyncClient) -> None:
    response = await async_client.get("/api/v1/users/me/")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


async def _get(path: str) -> dict[str, str]:
    """Headers of a GET through the real ASGI application, as daphne would call it."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    assert (start["type"], start["status"]) == ("http.response.start", 200), start
    while (await communicator.receive_output(5)).get("more_body"):
        pass  # the file's body, streamed
    await communicator.wait(5)
    return {name.decode().lower(): value.decode() for name, value in start["headers"]}


@pytest.mark.parametrize("path", ["/", "/app.js"])
async def test_the_web_client_cannot_be_framed(path: str) -> None:
    headers = await _get(path)

    assert headers["x-frame-options"] == "DENY"
    policy = [part.strip() for part in headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy


def test_django_responses_deny_framing_too(settings: Any) -> None:
    assert settings.X_FRAME_OPTIONS == "DENY"
