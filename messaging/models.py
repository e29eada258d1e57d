from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from rooms.models import Room


class Message(models.Model):
    """One chat message; ``seq`` is its gap-free position in the room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveBigIntegerField()
    # The room's revision at the message's latest change (API.md, Revisions).
    rev = models.PositiveBigIntegerField()
    body = models.TextField(max_length=4000, blank=True)
    client_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # Also the index that keyset pagination walks, in both directions.
            models.UniqueConstraint(fields=["room", "seq"], name="messaging_message_room_seq"),
            # Each revision belongs to one message at a time; the index that
            # ``changes/?after=`` and the sockets' gap fill walk.
            models.UniqueConstraint(fields=["room", "rev"], name="messaging_message_room_rev"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"],
                condition=~Q(client_id=""),
                name="messaging_message_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"
