from django.db.models import QuerySet

from accounts.models import User


def user_list() -> QuerySet[User]:
    """Every user, active or not: messages keep showing their authors after deactivation."""
    return User.objects.all()


def user_username_taken(*, username: str) -> bool:
    """Whether a user already has this name in any case (the database has the final word)."""
    return User.objects.filter(username__iexact=username).exists()
