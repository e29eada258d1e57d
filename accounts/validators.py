"""Text rules shared by the apps: what a name or a message body may contain."""

import unicodedata

from django.core.exceptions import ValidationError

# Cc: control characters (NUL included); Cs: lone surrogates, which JSON can carry
# ("\ud800") but no database can store as UTF-8.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs"})


def has_forbidden_characters(value: str, *, allowed: str = "") -> bool:
    return any(
        unicodedata.category(ch) in _FORBIDDEN_CATEGORIES and ch not in allowed for ch in value
    )


def validate_no_control_characters(value: str) -> None:
    if has_forbidden_characters(value):
        raise ValidationError("Control characters are not allowed.", code="control_characters")
