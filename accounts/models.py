from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower

from accounts.validators import validate_no_control_characters

USERNAME_TAKEN = "A user with that username already exists."


class CaseInsensitiveUserManager(UserManager["User"]):
    """Logs people in by username without regard to case, as usernames are unique that way."""

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A chat user: a username, a password and a name to show."""

    display_name = models.CharField(
        max_length=64, blank=True, validators=[validate_no_control_characters]
    )

    # Every token carries the generation it was issued in (accounts.tokens); raising it
    # revokes all of them at once. An integer, not a time: a token issued in the same
    # second as the revocation (the next login) must still work.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects = CaseInsensitiveUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_ci_unique",
                violation_error_message=USERNAME_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return self.username
