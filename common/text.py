"""Text rules shared by the apps: what a name or a message body may contain, and when
two names are the same."""

import functools
import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

# Unicode's Cc (control characters, NUL included: U+0000-U+001F and U+007F-U+009F) and
# Cs (lone surrogates, which JSON can carry as "\ud800" but no database can store as
# UTF-8). A character class, not a per-character category lookup: every message body
# goes through it.
_FORBIDDEN_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0xD800, 0xDFFF))


@functools.cache
def _forbidden_pattern(allowed: str) -> re.Pattern[str]:
    forbidden = [ch for low, high in _FORBIDDEN_RANGES for ch in map(chr, range(low, high + 1))]
    kept = "".join(re.escape(ch) for ch in forbidden if ch not in allowed)
    return re.compile(f"[{kept}]")


def has_forbidden_characters(value: str, *, allowed: str = "") -> bool:
    return _forbidden_pattern(allowed).search(value) is not None


def validate_no_control_characters(value: str) -> None:
    if has_forbidden_characters(value):
        raise ValidationError("Control characters are not allowed.", code="control_characters")


# Unicode's Cf (format characters: zero-width spaces, bidirectional controls, the BOM,
# the soft hyphen...) render as nothing or reorder text, so names could look like other
# names. The zero-width joiner and non-joiner stay: emoji sequences and some scripts
# (Persian, the Indic ones) need them. Names are short: one category lookup a character.
FORMAT_CHARACTERS_ALLOWED = "\u200c\u200d"


def has_format_characters(value: str) -> bool:
    return any(
        unicodedata.category(ch) == "Cf" and ch not in FORMAT_CHARACTERS_ALLOWED for ch in value
    )


def validate_no_format_characters(value: str) -> None:
    if has_format_characters(value):
        raise ValidationError(
            "Invisible format characters (zero-width spaces, direction controls and the "
            "like) are not allowed.",
            code="format_characters",
        )


# Every kind of name (display names, room names and topics): no control characters, no
# format characters but the joiners. (Usernames' own form already allows neither.)
NAME_VALIDATORS = (validate_no_control_characters, validate_no_format_characters)


def is_blank(value: str) -> bool:
    """Nothing but white space and format characters (any of Cf, the joiners included).

    Stops at the first other character: for a real message, the first one.
    """
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)


def fold_case(value: str) -> str:
    """The key under which two names are the same: full Unicode case folding (``ß`` is
    ``ss``, final sigma is sigma), with compatibility forms (NFKC) unified before and after.

    In Python, not in SQL: SQLite's LOWER folds only ASCII, PostgreSQL's knows no ``ß``.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def fold_before_save(instance: Any, source: str, folded: str, save_kwargs: dict[str, Any]) -> None:
    """For a model's ``save()``: sets ``folded`` to ``fold_case(source)``, and saves it
    too whenever ``update_fields`` names ``source``. The unique key is on ``folded``."""
    setattr(instance, folded, fold_case(getattr(instance, source)))
    update_fields = save_kwargs.get("update_fields")
    if update_fields is not None and source in update_fields:
        save_kwargs["update_fields"] = {*update_fields, folded}
