"""Reads about rooms. Visibility lives here and nowhere else."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from rooms.models import Membership, Room


def room_list_visible(*, user: User) -> QuerySet[Room]:
    """Every public room, and the private rooms ``user`` is a member of."""
    is_member = Exists(Membership.objects.filter(room=OuterRef("pk"), user=user))
    return Room.objects.filter(Q(visibility=Room.Visibility.PUBLIC) | is_member)


def room_get_visible(*, room_id: int, user: User) -> Room | None:
    return room_list_visible(user=user).filter(pk=room_id).first()


def membership_get(*, room_id: int, user_id: int) -> Membership | None:
    return Membership.objects.filter(room_id=room_id, user_id=user_id).first()
