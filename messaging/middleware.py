"""WebSocket authentication with a SimpleJWT access token.

Mobile apps and scripts send ``Authorization: Bearer <access>``; browsers cannot set
headers on a WebSocket handshake, so they send ``?token=<access>`` instead (which can
end up in proxy access logs: keep access tokens short-lived). Validation is delegated
to the REST API's ``SessionJWTAuthentication``, so HTTP and WebSocket accept exactly the
same tokens: access tokens only, active users only, none revoked.
"""

import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import Token

from accounts.authentication import SessionJWTAuthentication
from accounts.models import User

logger = logging.getLogger(__name__)


def get_user_for_token(raw_token: str) -> tuple[User, Token] | None:
    """The active user a raw access token names, with the validated token, or None."""
    authenticator = SessionJWTAuthentication()
    try:
        validated_token = authenticator.get_validated_token(raw_token.encode())
        user = authenticator.get_user(validated_token)
    except AuthenticationFailed:  # also covers SimpleJWT's InvalidToken
        return None
    return (user, validated_token) if isinstance(user, User) else None


def token_from_scope(scope: Any) -> str | None:
    """The bearer token of the handshake: the header first, else ``?token=``."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    values = query.get("token")
    return values[0] if values and values[0] else None


def scope_user(scope: Any) -> User | None:
    """The authenticated user this middleware put in the scope, or None."""
    user = scope.get("user")
    return user if isinstance(user, User) else None


class JWTAuthMiddleware(BaseMiddleware):
    """Populates ``scope["user"]`` (and ``scope["token_exp"]``); consumers decide the rest."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        # This frame lives as long as the socket: it keeps only the scope, not the
        # token and its payload (an idle process holds thousands of sockets).
        scope = dict(scope, **await self._identity(scope))
        return await self.inner(scope, receive, send)

    @staticmethod
    async def _identity(scope: Any) -> dict[str, Any]:
        token = token_from_scope(scope)
        identity: dict[str, Any] = {"user": AnonymousUser(), "token_exp": None}
        try:
            found = await database_sync_to_async(get_user_for_token)(token) if token else None
        except DatabaseError:
            # Let the handshake through, so the consumer can close it with 4503 ("try
            # again later") rather than daphne refusing it with a bare HTTP 500.
            logger.warning("could not read the user of a WebSocket token", exc_info=True)
            identity["auth_unavailable"] = True
            found = None
        if found is not None:
            user, validated = found
            identity.update(user=user, token_exp=validated.get("exp"))
        return identity
