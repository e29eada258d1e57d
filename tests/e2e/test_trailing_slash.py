"""A client that forgets the trailing slash still creates what it POSTs, against daphne."""

import pytest
import requests

from tests.support.client import Server, register

pytestmark = pytest.mark.e2e


def test_requests_following_the_redirect_creates_the_room(server: Server) -> None:
    alice = register(server, "alice")

    # requests follows redirects as browsers and most HTTP clients do: a 301 as a GET
    # without the body, a 308 with the same method and body.
    response = requests.post(
        f"{server.http_url}/api/v1/rooms",
        json={"name": "no-slash"},
        headers={"Authorization": f"Bearer {alice.access}"},
        timeout=10,
    )

    assert [(r.status_code, r.headers["Location"]) for r in response.history] == [
        (308, "/api/v1/rooms/")
    ]
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "no-slash"
    listed = requests.get(
        f"{server.http_url}/api/v1/rooms/",
        headers={"Authorization": f"Bearer {alice.access}"},
        timeout=10,
    )
    assert [room["name"] for room in listed.json()["results"]] == ["no-slash"]
