import pytest
from django.test import Client

from accounts.models import User
from accounts.services import user_token_pair
from realtime.groups import user_group
from tests.conftest import Published
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for_users(client: Client) -> Client:
    admin = UserFactory.create(is_staff=True, is_superuser=True)
    client.force_login(admin)  # the admin is session-based, not part of the JWT API
    return client


def test_the_user_admin_lists_and_shows_display_names(admin_client_for_users: Client) -> None:
    someone = UserFactory.create(display_name="Shown In Admin")

    listing = admin_client_for_users.get("/admin/accounts/user/")
    detail = admin_client_for_users.get(f"/admin/accounts/user/{someone.pk}/change/")

    assert listing.status_code == 200
    assert b"Shown In Admin" in listing.content
    assert detail.status_code == 200
    assert b'name="display_name"' in detail.content


def test_the_user_admin_adds_a_user_with_a_display_name(admin_client_for_users: Client) -> None:
    response = admin_client_for_users.post(
        "/admin/accounts/user/add/",
        {
            "username": "added",
            "password1": "pale-violet-tractor-81",
            "password2": "pale-violet-tractor-81",
            "usable_password": "true",
            "display_name": "Added By Admin",
        },
    )

    assert response.status_code == 302
    assert User.objects.get(username="added").display_name == "Added By Admin"


def test_the_user_admin_refuses_a_username_taken_in_another_case(
    admin_client_for_users: Client,
) -> None:
    UserFactory.create(username="taken")

    response = admin_client_for_users.post(
        "/admin/accounts/user/add/",
        {
            "username": "TAKEN",
            "password1": "pale-violet-tractor-81",
            "password2": "pale-violet-tractor-81",
            "usable_password": "true",
        },
    )

    assert response.status_code == 200
    assert not User.objects.filter(username="TAKEN").exists()


def test_a_user_added_in_the_admin_without_display_name_shows_the_username(
    admin_client_for_users: Client,
) -> None:
    admin_client_for_users.post(
        "/admin/accounts/user/add/",
        {
            "username": "plain",
            "password1": "pale-violet-tractor-81",
            "password2": "pale-violet-tractor-81",
            "usable_password": "true",
        },
    )

    assert User.objects.get(username="plain").display_name == "plain"


def test_deactivating_a_user_in_the_admin_closes_their_sockets(
    admin_client_for_users: Client, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    someone = UserFactory.create()
    form = {
        "username": someone.username,
        "display_name": someone.display_name,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        # is_active left out: the checkbox is unticked
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_for_users.post(f"/admin/accounts/user/{someone.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    someone.refresh_from_db()
    assert someone.is_active is False
    assert capture_events == [
        (user_group(someone.pk), {"type": "user.signed_out", "reason": "user deactivated"})
    ]


def test_changing_a_password_in_the_admin_revokes_the_users_tokens(
    admin_client_for_users: Client, django_capture_on_commit_callbacks, capture_events: Published
) -> None:
    someone = UserFactory.create()
    pair = user_token_pair(user=someone)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {pair['access']}"}
    assert Client().get("/api/v1/users/me/", **bearer).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_for_users.post(
            f"/admin/accounts/user/{someone.pk}/password/",
            {
                "password1": "pale-violet-tractor-81",
                "password2": "pale-violet-tractor-81",
                "usable_password": "true",
            },
        )

    assert response.status_code == 302, response.content[:2000]
    assert Client().get("/api/v1/users/me/", **bearer).status_code == 401
    assert capture_events == [
        (user_group(someone.pk), {"type": "user.signed_out", "reason": "signed out everywhere"})
    ]
