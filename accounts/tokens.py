"""Tokens that a password change or "log out everywhere" revokes, access tokens included.

Access tokens are stateless JWTs, checked against no list. So every token carries its
user's ``token_generation`` as issued (the ``gen`` claim; an access token copies it from
its refresh token), and a token whose generation is not the user's current one is
refused: by REST and WebSocket authentication (``accounts.authentication``) and by
refresh (``accounts.serializers.TokenRefreshSerializer``). A token without the claim
counts as generation 0, so tokens issued before it existed keep working until the
first revocation.
"""

from typing import Any

from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts.models import User

GENERATION_CLAIM = "gen"


def token_is_current(token: Token, user: User) -> bool:
    """Whether ``token`` was issued after the user's last revocation."""
    generation: Any = token.get(GENERATION_CLAIM, 0)
    return generation == user.token_generation


class SessionRefreshToken(RefreshToken):
    """A refresh token (and the access tokens made from it) of the user's current generation."""

    @classmethod
    def for_user(cls, user: Any) -> "SessionRefreshToken":
        token = super().for_user(user)
        token[GENERATION_CLAIM] = user.token_generation
        return token  # type: ignore[return-value]
