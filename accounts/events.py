"""The events of accounts, published to the user's sockets after the change commits."""

from typing import Literal, TypedDict

from realtime.groups import user_group
from realtime.publish import publish_on_commit


class UserSignedOutEvent(TypedDict):
    """Every socket of the user closes with 4401, ``reason`` in its close frame."""

    type: Literal["user.signed_out"]
    reason: str


def _sign_out(user_id: int, reason: str) -> None:
    event: UserSignedOutEvent = {"type": "user.signed_out", "reason": reason}
    publish_on_commit(user_group(user_id), event)


def publish_user_deactivated(user_id: int) -> None:
    _sign_out(user_id, "user deactivated")


def publish_user_sessions_revoked(user_id: int) -> None:
    """Every token of that user was revoked (a password change, log out everywhere)."""
    _sign_out(user_id, "signed out everywhere")
