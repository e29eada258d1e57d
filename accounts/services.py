from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import events
from accounts.models import USERNAME_TAKEN, User
from accounts.selectors import user_username_taken
from accounts.tokens import SessionRefreshToken

OLD_PASSWORD_WRONG = "The current password is not correct."  # noqa: S105 (a message)


def user_display_name_or_default(*, display_name: str, username: str) -> str:
    """The display name to store: the one given, or else the username (cut to fit)."""
    max_length = User._meta.get_field("display_name").max_length
    return display_name or username[:max_length]


def user_create(*, username: str, password: str, display_name: str = "") -> User:
    """Creates an active user, as registration does (the admin has its own form).

    Enforces every rule itself (input serializers check them too, for nicer errors): the
    username's form and case-insensitive uniqueness, Django's password validators run
    against the new user, and the display name's. An empty display name becomes the
    username. Raises Django's ``ValidationError`` keyed by field.
    """
    user = User(
        username=username,
        display_name=user_display_name_or_default(display_name=display_name, username=username),
    )
    if user_username_taken(username=username):
        raise ValidationError({"username": USERNAME_TAKEN}, code="unique")
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        # Another registration took the name between the check above and this insert;
        # the case-insensitive unique constraint is the final guard.
        raise ValidationError({"username": USERNAME_TAKEN}, code="unique") from exc
    return user


def user_update(*, user: User, display_name: str) -> User:
    """Changes what others see of the user. An empty display name becomes the username."""
    user.display_name = user_display_name_or_default(
        display_name=display_name, username=user.username
    )
    user.clean_fields(exclude=[f.name for f in User._meta.fields if f.name != "display_name"])
    user.save(update_fields=["display_name"])
    return user


def user_set_active(*, user: User, is_active: bool) -> User:
    """Activates or deactivates a user. A deactivated user can no longer log in or
    refresh (SimpleJWT checks ``is_active``), and their live sockets close with 4401."""
    user.is_active = is_active
    user.save(update_fields=["is_active"])
    if not is_active:
        events.publish_user_deactivated(user.pk)
    return user


def user_logout(*, user: User, refresh: RefreshToken) -> None:
    """Blacklists one of the user's refresh tokens, so it can no longer be refreshed.

    Access tokens already issued stay valid until they expire (minutes): they are not
    checked against the blacklist. A refresh token of another user raises ``PermissionDenied``.
    """
    if str(refresh.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise PermissionDenied("This refresh token belongs to another user.")
    refresh.blacklist()


def user_token_pair(*, user: User) -> dict[str, str]:
    """A fresh access/refresh pair, as a login issues; the refresh token is recorded as
    outstanding so that logout and rotation can blacklist it."""
    refresh = SessionRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


@transaction.atomic
def user_sessions_revoke(*, user: User) -> None:
    """Logs the user out everywhere: every token issued to them so far stops working.

    Their token generation goes up (accounts.tokens), which refuses every older access
    and refresh token, and their outstanding refresh tokens are blacklisted as well.
    Tokens issued afterwards, even within the same second, work. After commit, every
    socket of theirs closes with 4401.
    """
    User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)
    user.refresh_from_db(fields=["token_generation"])
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
    )
    events.publish_user_sessions_revoked(user.pk)


@transaction.atomic
def user_password_change(*, user: User, old_password: str, new_password: str) -> None:
    """Changes the password, given the current one, and ends every session of the user.

    A wrong ``old_password``, or a new one that Django's password validators refuse, raises
    ``ValidationError`` keyed by field, and changes nothing.
    """
    errors: dict[str, list[str]] = {}
    if not user.check_password(old_password):
        errors["old_password"] = [OLD_PASSWORD_WRONG]
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        errors["new_password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_sessions_revoke(user=user)
