from django.db.models import QuerySet

from accounts.models import User
from common.text import fold_case


def user_list() -> QuerySet[User]:
    """Every user, active or not: messages keep showing their authors after deactivation."""
    return User.objects.all()


def user_username_taken(*, username: str) -> bool:
    """Whether a user already has this name under full Unicode case folding (the database
    constraint has the final word)."""
    return User.objects.filter(username_folded=fold_case(username)).exists()
