from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from common.text import NAME_VALIDATORS, fold_before_save, fold_case

USERNAME_TAKEN = "A user with that username already exists."


class CaseInsensitiveUserManager(UserManager["User"]):
    """Logs people in by username without regard to case, as usernames are unique that way."""

    def get_by_natural_key(self, username: str | None) -> "User":
        if not isinstance(username, str):
            return self.get(username=username)
        # The exact name first: it still reaches a user whose name clashed with another
        # under full case folding before usernames were folded (migration 0003).
        users = list(self.filter(Q(username=username) | Q(username_folded=fold_case(username))))
        exact = [user for user in users if user.username == username]
        if exact or users:
            return (exact or users)[0]
        raise self.model.DoesNotExist(f"No user is called {username!r}.")


class User(AbstractUser):
    """A chat user: a username, a password and a name to show."""

    display_name = models.CharField(max_length=64, blank=True, validators=NAME_VALIDATORS)
    # fold_case(username), kept by save(): usernames are unique under full Unicode case
    # folding on every database, which no database function does the same everywhere.
    # Text: folding can make a name longer ("ß" is "ss").
    username_folded = models.TextField(editable=False)
    # Every token carries the generation it was issued in (accounts.tokens); raising it
    # revokes all of them at once. An integer, not a time: a token issued in the same
    # second as the revocation (the next login) must still work.
    token_generation = models.PositiveIntegerField(default=0, editable=False)

    objects: ClassVar[CaseInsensitiveUserManager] = CaseInsensitiveUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["username_folded"],
                name="accounts_user_username_folded_unique",
                violation_error_message=USERNAME_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return self.username

    def clean(self) -> None:
        super().clean()  # normalizes the username (NFKC)
        # Here, not only in the constraint: forms (the admin's) never validate a field
        # they do not show, and would meet the clash as an IntegrityError.
        username: object = self.username
        if not isinstance(username, str):  # a form that already refused it
            return
        taken = User.objects.filter(username_folded=fold_case(username))
        if taken.exclude(pk=self.pk).exists():
            raise ValidationError({"username": USERNAME_TAKEN}, code="unique")

    def save(self, *args: Any, **kwargs: Any) -> None:
        fold_before_save(self, "username", "username_folded", kwargs)
        super().save(*args, **kwargs)
