from rest_framework import serializers

from accounts.models import User


class UserBriefSerializer(serializers.ModelSerializer[User]):
    """A user as embedded in rooms, memberships and messages."""

    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields


class UserSerializer(serializers.ModelSerializer[User]):
    """The full user, as ``/users/me/`` shows it."""

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "date_joined"]
        read_only_fields = ["id", "username", "date_joined"]
