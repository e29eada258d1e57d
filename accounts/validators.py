"""Text rules shared by the apps: what a name or a message body may contain."""

import functools
import re

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
