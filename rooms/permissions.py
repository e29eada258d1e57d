"""Who may do what to a room they can already see.

Object permissions only: the views find rooms through the visibility selectors first,
so a room the caller may not see is a 404 before any of these can answer 403.
"""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from rooms.models import Room
from rooms.selectors import membership_get


class IsRoomOwner(BasePermission):
    """The caller owns the room."""

    message = "Only the room's owner can do this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return isinstance(obj, Room) and obj.owner_id == request.user.pk


class IsRoomMember(BasePermission):
    """The caller is a member of the room."""

    message = "Only members of the room can do this."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if not isinstance(obj, Room):
            return False
        # Rooms from ``room_get_for_user`` carry the answer already.
        is_member: bool | None = getattr(obj, "is_member", None)
        if is_member is None:
            assert request.user.pk is not None  # IsAuthenticated comes first
            is_member = membership_get(room_id=obj.pk, user_id=request.user.pk) is not None
        return is_member


class IsRoomOwnerOrSelf(BasePermission):
    """The caller owns the room, or is the member the URL names (``user_id``)."""

    message = "Only the room's owner can remove other members."

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if not isinstance(obj, Room):
            return False
        return obj.owner_id == request.user.pk or str(view.kwargs.get("user_id")) == str(
            request.user.pk
        )
