"""Usernames and display names under Unicode (API.md, Accounts, v2).

Usernames are unique under full Unicode case folding on every database (SQLite's LOWER
folds only ASCII), logins match the same way, and names refuse format characters (Cf)
except the zero-width joiner and non-joiner.
"""

import unicodedata
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_create
from common.text import FORMAT_CHARACTERS_ALLOWED, has_format_characters
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
PASSWORD = "pale-violet-tractor-81"
# Zero-width space, left-to-right and right-to-left overrides, BOM, word joiner,
# soft hyphen, left-to-right mark.
FORMAT_CHARACTERS = ["\u200b", "\u202d", "\u202e", "\ufeff", "\u2060", "\u00ad", "\u200e"]
# "I want" in Persian, which needs the zero-width non-joiner (escaped: the letters look Latin).
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji: three joined by ZWJ


def register(**body: Any) -> Any:
    return APIClient().post(REGISTER, {"password": PASSWORD, **body}, format="json")


@pytest.mark.parametrize(
    ("first", "second"),
    [("Äxyz", "äxyz"), ("straße", "STRASSE"), ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("ǅemal", "džemal")],
)
def test_a_username_taken_under_unicode_case_folding_is_refused(first: str, second: str) -> None:
    assert register(username=first).status_code == 201

    response = register(username=second)

    assert response.status_code == 400
    assert set(response.json()) == {"username"}
    assert User.objects.count() == 1


def test_user_create_refuses_a_folded_clash_too() -> None:
    user_create(username="Äxyz", password=PASSWORD)

    with pytest.raises(ValidationError) as raised:
        user_create(username="äXYZ", password=PASSWORD)

    assert set(raised.value.message_dict) == {"username"}


def test_logging_in_matches_the_username_under_the_same_folding() -> None:
    register(username="Straße")

    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "STRASSE", "password": PASSWORD}, format="json"
    )
    other_case = APIClient().post(
        "/api/v1/auth/token/", {"username": "straße", "password": PASSWORD}, format="json"
    )

    assert (response.status_code, other_case.status_code) == (200, 200)


def test_the_admin_refuses_a_username_taken_under_case_folding(client: Client) -> None:
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    UserFactory.create(username="Äxyz")

    response = client.post(
        "/admin/accounts/user/add/",
        {
            "username": "äxyz",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert not User.objects.filter(username="äxyz").exists()


@pytest.mark.parametrize("character", FORMAT_CHARACTERS)
def test_a_format_character_in_a_username_is_refused(character: str) -> None:
    response = register(username=f"ali{character}ce")

    assert response.status_code == 400
    assert set(response.json()) == {"username"}


@pytest.mark.parametrize("character", FORMAT_CHARACTERS)
def test_a_format_character_in_a_display_name_is_refused(character: str, user: User) -> None:
    registered = register(username="alice", display_name=f"Ali{character}ce")
    client = APIClient()
    client.force_authenticate(user)
    patched = client.patch("/api/v1/users/me/", {"display_name": f"Bo{character}b"}, format="json")

    assert registered.status_code == 400
    assert set(registered.json()) == {"display_name"}
    assert patched.status_code == 400
    assert set(patched.json()) == {"display_name"}


@pytest.mark.parametrize("name", [f"Family {FAMILY}", PERSIAN, "\U0001f3f3\ufe0f\u200d\U0001f308"])
def test_joiners_are_allowed_in_a_display_name(name: str) -> None:
    response = register(username="alice", display_name=name)

    assert response.status_code == 201
    assert response.json()["user"]["display_name"] == name


def test_format_characters_are_unicode_category_cf_but_the_joiners() -> None:
    assert FORMAT_CHARACTERS_ALLOWED == "\u200c\u200d"
    wrong = [
        hex(code)
        for code in range(0x110000)
        if has_format_characters(chr(code))
        != (unicodedata.category(chr(code)) == "Cf" and chr(code) not in "\u200c\u200d")
    ]
    assert wrong == []
