"""The web client is served at ``/`` by WhiteNoise, inside the async middleware chain."""

import pytest
from django.test import AsyncClient

from config.static import AsyncWhiteNoiseMiddleware


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


def test_the_middleware_runs_on_the_event_loop() -> None:
    """Async only: Django then keeps the chain on the loop instead of hopping threads."""
    assert (AsyncWhiteNoiseMiddleware.async_capable, AsyncWhiteNoiseMiddleware.sync_capable) == (
        True,
        False,
    )
