from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import USERNAME_TAKEN, User
from accounts.selectors import user_username_taken
from accounts.tokens import SessionRefreshToken, token_is_current
from common.text import NAME_VALIDATORS

USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length
DISPLAY_NAME_MAX_LENGTH = User._meta.get_field("display_name").max_length
# Generous for passphrases, small enough that the validators stay cheap.
PASSWORD_MAX_LENGTH = 256


def user_brief(user: User) -> dict[str, Any]:
    """``UserBriefSerializer``'s output, built directly: it is in every message frame."""
    return user_brief_of(user.pk, user.username, user.display_name)


def user_brief_of(user_id: int, username: str, display_name: str) -> dict[str, Any]:
    """``user_brief`` from the three columns, for rows read without a User instance."""
    return {"id": user_id, "username": username, "display_name": display_name}


class UserBriefSerializer(serializers.ModelSerializer[User]):
    """A user as embedded in rooms, memberships and messages."""

    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields

    def to_representation(self, instance: User) -> dict[str, Any]:
        return user_brief(instance)


class UserSerializer(serializers.ModelSerializer[User]):
    """The full user, as ``/users/me/`` shows it; only ``display_name`` is writable."""

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "date_joined"]
        read_only_fields = ["id", "username", "date_joined"]


def password_field(**kwargs: Any) -> serializers.CharField:
    """A password as the API takes it: write-only, never trimmed, at most 256 characters."""
    return serializers.CharField(
        max_length=PASSWORD_MAX_LENGTH,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        **kwargs,
    )


class RegisterSerializer(serializers.Serializer[Any]):
    """A new account: username, password and an optional display name."""

    # Checked here so that every field error comes back at once; ``user_create``
    # enforces the same rules again for callers other than this API.

    username = serializers.CharField(
        max_length=USERNAME_MAX_LENGTH,
        validators=[UnicodeUsernameValidator()],
        help_text="1-150 letters, digits and @.+-_; unique without regard to case "
        "(full Unicode case folding).",
    )
    password = password_field(help_text="Checked by the server's password validators.")
    display_name = serializers.CharField(
        max_length=DISPLAY_NAME_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        validators=NAME_VALIDATORS,
        help_text="At most 64 characters, no control or invisible format characters; "
        "defaults to the username.",
    )

    def validate_username(self, value: str) -> str:
        if user_username_taken(username=value):
            raise serializers.ValidationError(USERNAME_TAKEN, code="unique")
        return value

    def validate_password(self, value: str) -> str:
        # A field-level check, so password errors come back together with the others.
        # The similarity validator compares against the username being registered.
        username = self.initial_data.get("username")
        candidate = User(username=username if isinstance(username, str) else "")
        try:
            password_validation.validate_password(value, candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class TokenPairSerializer(serializers.Serializer[Any]):
    """A fresh pair of tokens."""

    access = serializers.CharField(help_text="Short-lived; send as `Authorization: Bearer`.")
    refresh = serializers.CharField(help_text="Trade it at `auth/token/refresh/`; single use.")


class RegisterResponseSerializer(TokenPairSerializer):
    """The new user and their first pair of tokens."""

    user = UserSerializer()


class LogoutSerializer(serializers.Serializer[Any]):
    """The refresh token of the session to end."""

    refresh = serializers.CharField()

    def validate_refresh(self, value: str) -> RefreshToken:
        try:
            # SimpleJWT annotates the encoded token as a Token; it takes the text.
            return RefreshToken(value)  # type: ignore[arg-type]
        except TokenError as exc:  # malformed, expired, blacklisted or not a refresh token
            raise serializers.ValidationError(str(exc), code="token_not_valid") from exc


class PasswordChangeSerializer(serializers.Serializer[Any]):
    """The current password and the new one."""

    old_password = password_field()
    new_password = password_field(help_text="Checked by the server's password validators.")


class PasswordChangeErrorSerializer(serializers.Serializer[Any]):
    """Why a password change was refused, field by field."""

    old_password = serializers.ListField(child=serializers.CharField(), required=False)
    new_password = serializers.ListField(child=serializers.CharField(), required=False)


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """Username and password for a pair of tokens of the user's current generation."""

    token_class = SessionRefreshToken


class ErrorSerializer(serializers.Serializer[Any]):
    """An error that is not about one field."""

    detail = serializers.CharField()


class RegisterErrorSerializer(serializers.Serializer[Any]):
    """Why a registration was refused, field by field."""

    username = serializers.ListField(child=serializers.CharField(), required=False)
    password = serializers.ListField(child=serializers.CharField(), required=False)
    display_name = serializers.ListField(child=serializers.CharField(), required=False)


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """A refresh token to trade for a new pair."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            with transaction.atomic():
                self._lock_outstanding_token(attrs["refresh"])
                self._check_not_revoked(attrs["refresh"])
                return super().validate(attrs)
        except User.DoesNotExist as exc:
            # SimpleJWT 5.5 looks the user up with ``objects.get`` and lets a deleted
            # user's ``DoesNotExist`` escape as a 500 (djangorestframework-simplejwt#860).
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc

    def _check_not_revoked(self, raw_token: str) -> None:
        # Logging out everywhere blacklists the outstanding refresh tokens too; this also
        # covers any that were never recorded as outstanding.
        token = self.token_class(raw_token)  # type: ignore[arg-type]  # as above: the text
        user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
        if user is not None and not token_is_current(token, user):
            raise TokenError("Token has been revoked: log in again.")

    def _lock_outstanding_token(self, raw_token: str) -> None:
        # SimpleJWT checks the blacklist, then blacklists: two refreshes racing with one
        # token could both win. Holding the token's row makes the second wait, and then
        # find the token blacklisted. (SQLite's write lock serializes them anyway.)
        jti = self.token_class(raw_token)[jwt_settings.JTI_CLAIM]  # type: ignore[arg-type]
        list(OutstandingToken.objects.select_for_update().filter(jti=jti).values_list("pk"))
