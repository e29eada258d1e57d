"""The per-user, per-room limit on changes: sends, edits and room updates share it.

A token bucket kept on the membership row (``send_allowance``, ``send_checked_at``), so
that every process and both transports draw on the same one: ``CHAT_MESSAGE_RATE``
tokens a second, bursts of ``CHAT_MESSAGE_BURST`` (API.md, Limits). Callers take a token
in the transaction of the change, with the membership row locked.
"""

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from rooms.models import Membership


class RateLimited(Exception):
    """The user's token bucket for this room is empty; nothing was changed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Sending too fast; retry in {retry_after:.3f} s.")
        self.retry_after = retry_after


def membership_take_token(membership: Membership, now: datetime) -> None:
    """Takes one token from the membership's bucket (in memory; the caller saves it)."""
    rate = settings.CHAT_MESSAGE_RATE
    burst = float(settings.CHAT_MESSAGE_BURST)
    allowance = burst if membership.send_allowance is None else membership.send_allowance
    if membership.send_checked_at is not None:
        elapsed = max(0.0, (now - membership.send_checked_at).total_seconds())
        allowance = min(burst, allowance + elapsed * rate)
    if allowance < 1.0:
        raise RateLimited(retry_after=(1.0 - allowance) / rate)
    membership.send_allowance = allowance - 1.0
    membership.send_checked_at = now


def membership_spend_token(*, room_id: int, user_id: int) -> Membership | None:
    """Locks the user's membership of the room and takes a token from it.

    Call inside the change's transaction. Returns the membership, or None when the user
    is not a member; raises ``RateLimited`` when the bucket is empty.
    """
    rows = Membership.objects.select_for_update().filter(room_id=room_id, user_id=user_id)
    membership = rows.first()
    if membership is None:
        return None
    membership_take_token(membership, timezone.now())
    membership.save(update_fields=["send_allowance", "send_checked_at"])
    return membership
