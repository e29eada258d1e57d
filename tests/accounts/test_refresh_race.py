import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import UserFactory

# Real commits and one connection per thread: two requests truly in flight at once.
pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 4


@pytest.mark.usefixtures("postgres")
def test_concurrent_refreshes_with_one_token_let_exactly_one_win() -> None:
    refresh = str(RefreshToken.for_user(UserFactory.create()))
    start = threading.Barrier(RACERS)
    codes: list[int] = []

    def racer() -> None:
        try:
            client = APIClient()
            start.wait(timeout=5)
            response = client.post(
                "/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json"
            )
            codes.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=racer) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(codes) == [200] + [401] * (RACERS - 1)
