"""A server error answers JSON without a traceback, through the project's handler500.

The test URLconf is the real one plus a view that fails, and it names the same
``handler500`` as ``config.urls``.
"""

import pytest
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

import config.urls


class Explodes(APIView):
    """Fails the way a bug would."""

    permission_classes = []
    authentication_classes = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")


urlpatterns = [path("explodes/", Explodes.as_view()), *config.urls.urlpatterns]
handler500 = config.urls.handler500

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def test_an_unhandled_exception_answers_500_json_without_a_traceback() -> None:
    client = APIClient(raise_request_exception=False)

    response = client.get("/explodes/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b"Traceback" not in response.content
    assert b"secret internal detail" not in response.content
    assert response.json()
