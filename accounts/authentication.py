from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from accounts.models import User
from accounts.tokens import token_is_current


class SessionJWTAuthentication(JWTAuthentication):
    """SimpleJWT's access-token authentication that also refuses revoked tokens.

    Used by REST (``DEFAULT_AUTHENTICATION_CLASSES``) and by the WebSocket middleware, so
    both accept exactly the same tokens.
    """

    def get_user(self, validated_token: Token) -> Any:
        user = super().get_user(validated_token)
        if isinstance(user, User) and not token_is_current(validated_token, user):
            raise InvalidToken("Token has been revoked: log in again.")
        return user


class SessionJWTScheme(SimpleJWTScheme):
    """The schema's ``jwtAuth`` security scheme, as for SimpleJWT's own class."""

    target_class = "accounts.authentication.SessionJWTAuthentication"
