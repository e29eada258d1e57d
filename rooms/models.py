from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.text import NAME_VALIDATORS, fold_before_save

NAME_TAKEN = "A room with that name already exists."


class Room(models.Model):
    """A chat room; its row is also the counter that orders the room's messages."""

    class Visibility(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

    name = models.CharField(max_length=64, validators=NAME_VALIDATORS)
    # fold_case(name), kept by save(): the names of public rooms are unique under full
    # Unicode case folding, as usernames are, whatever the database's LOWER does.
    # Private rooms may share a name, so that a clash never reveals one.
    name_folded = models.TextField(editable=False)
    topic = models.CharField(max_length=256, blank=True, validators=NAME_VALIDATORS)
    visibility = models.CharField(
        max_length=7, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_rooms"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Kept by messaging.services in the same transaction as each message: the seq of
    # the newest message, and when the room last saw one (the room list's order).
    last_seq = models.PositiveBigIntegerField(default=0)
    # The room's newest revision: every change to its messages takes the next one.
    last_rev = models.PositiveBigIntegerField(default=0)
    last_activity_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name_folded"],
                condition=Q(visibility="public"),
                name="rooms_room_name_folded_unique",
                violation_error_message=NAME_TAKEN,
            ),
        ]
        indexes = [models.Index(fields=["-last_activity_at", "-id"], name="rooms_room_activity")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        fold_before_save(self, "name", "name_folded", kwargs)
        super().save(*args, **kwargs)


class Membership(models.Model):
    """A user's place in a room: when they joined and how far they have read.

    The role is not stored: the room's owner is the member whose user is ``room.owner``.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    joined_at = models.DateTimeField(default=timezone.now)
    last_read_seq = models.PositiveBigIntegerField(default=0)
    # Token bucket for sending, kept with the membership so that every process and
    # both transports share it; updated in the transaction that stores the message.
    send_allowance = models.FloatField(null=True, blank=True)
    send_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="rooms_membership_unique"),
        ]
        indexes = [models.Index(fields=["room", "joined_at"], name="rooms_membership_room")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"
