"""Schemathesis against the OpenAPI schema the server serves (API.md, Service endpoints).

The schema is fetched from ``/api/schema/`` and every operation in it is fuzzed through
Django's WSGI application, in this process and on the test database, so requests see
the objects the test made. Requests carry a real access token of a user who owns a room
with a member and a message in it, and ids in paths mostly name those objects, so the
operations get past authentication and lookup into validation and the services.

What must hold for every generated request, valid or not: no 5xx, a documented status
code, a documented content type and headers, a body that matches the documented schema,
and a 401 whenever the token is left out.
"""

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pytest_django.fixtures import Settings
from schemathesis import checks

from accounts.models import User
from accounts.tokens import SessionRefreshToken
from messaging.models import Message
from rooms.models import Membership, Room
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,
]


def world() -> dict[str, Any]:
    """An owner, their room with a member and a message; made again if a request deleted it."""
    owner = User.objects.filter(username="owner").first() or UserFactory.create(username="owner")
    member = User.objects.filter(username="member").first() or UserFactory.create(username="member")
    room = Room.objects.filter(owner=owner).first() or RoomFactory.create(owner=owner)
    Membership.objects.get_or_create(room=room, user=member)
    message = Message.objects.filter(room=room, is_deleted=False).first()
    if message is None:
        message = MessageFactory.create(room=room, author=owner)
    return {
        "room_id": room.pk,
        "message_id": message.pk,
        "user_id": member.pk,
        # Of the owner's current generation: a case that logged them out everywhere (or
        # changed their password) must not leave every later case at 401.
        "token": str(SessionRefreshToken.for_user(owner).access_token),
    }


def point_at_world(case: Any, ids: dict[str, Any]) -> None:
    """Positive integer ids name the world's objects; others (0, text) stay as generated."""
    for name, value in list(case.path_parameters.items()):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0 and name in ids:
            case.path_parameters[name] = ids[name]


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case: Any, settings: Settings) -> None:
    # Sends are rate limited per user and room: out of the way, so they reach the service.
    settings.CHAT_MESSAGE_RATE = 10_000.0
    settings.CHAT_MESSAGE_BURST = 10_000
    ids = world()
    point_at_world(case, ids)
    case.call_and_validate(headers={"Authorization": f"Bearer {ids['token']}"}, checks=CHECKS)


def test_the_schema_covers_the_contracts_operations() -> None:
    operations = {
        (result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()
    }

    assert len(operations) >= 20
    assert ("POST", "/api/v1/rooms/{room_id}/messages/") in operations
    assert ("GET", "/api/v1/rooms/{room_id}/messages/") in operations
