"""How times look in every payload, REST or WebSocket."""

from datetime import datetime

from django.utils import timezone


def iso_datetime(value: datetime | None) -> str | None:
    """As DRF's ``DateTimeField`` shows it: ISO 8601 in the current time zone, UTC as Z."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
