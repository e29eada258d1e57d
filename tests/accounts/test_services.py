import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.services import user_create, user_update
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pale-violet-tractor-81"


def test_user_create_saves_an_active_user_with_a_hashed_password() -> None:
    user = user_create(username="carol", password=PASSWORD, display_name="Carol")

    assert User.objects.get() == user
    assert user.is_active
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert user.display_name == "Carol"


def test_user_create_refuses_a_username_taken_in_another_case() -> None:
    UserFactory.create(username="Carol")

    with pytest.raises(ValidationError) as excinfo:
        user_create(username="cAROL", password=PASSWORD)

    assert set(excinfo.value.message_dict) == {"username"}


def test_user_create_runs_the_password_validators_against_the_new_user() -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="dorothea", password="dorothea!")

    assert set(excinfo.value.message_dict) == {"password"}
    assert not User.objects.exists()


def test_user_create_refuses_a_bad_display_name() -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="erin", password=PASSWORD, display_name="a\x00b")

    assert set(excinfo.value.message_dict) == {"display_name"}


def test_user_create_refuses_a_bad_username() -> None:
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="no spaces", password=PASSWORD)

    assert set(excinfo.value.message_dict) == {"username"}


def test_user_update_changes_the_display_name() -> None:
    user = UserFactory.create(username="frank")

    user_update(user=user, display_name="Frank F.")

    user.refresh_from_db()
    assert user.display_name == "Frank F."


def test_user_update_falls_back_to_the_username_for_an_empty_display_name() -> None:
    user = UserFactory.create(username="grace")

    user_update(user=user, display_name="")

    user.refresh_from_db()
    assert user.display_name == "grace"


def test_user_update_refuses_control_characters() -> None:
    user = UserFactory.create(display_name="before")

    with pytest.raises(ValidationError):
        user_update(user=user, display_name="after\x7f\x1b")

    user.refresh_from_db()
    assert user.display_name == "before"
