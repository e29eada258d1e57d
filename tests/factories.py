import factory
from django.db.models import F
from factory.django import DjangoModelFactory

from accounts.models import User
from messaging.models import Message
from rooms.models import Membership, Room

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda u: u.username.title())
    password = factory.django.Password(TEST_PASSWORD)


class RoomFactory(DjangoModelFactory[Room]):
    """A room whose owner is already its first member, as ``room_create`` leaves it."""

    class Meta:
        model = Room
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"room-{n}")
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def members(self, create: bool, extracted: list[User] | None, **kwargs: object) -> None:
        if create:
            users = [self.owner, *(extracted or [])]
            Membership.objects.bulk_create([Membership(room=self, user=u) for u in users])


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    room = factory.SubFactory(RoomFactory)
    user = factory.SubFactory(UserFactory)


class MessageFactory(DjangoModelFactory[Message]):
    """A stored message; keeps the room's counters in step, as ``message_create`` does."""

    class Meta:
        model = Message

    room = factory.SubFactory(RoomFactory)
    author = factory.LazyAttribute(lambda m: m.room.owner)
    body = factory.Sequence(lambda n: f"message {n}")

    @classmethod
    def _create(cls, model_class: type[Message], *args: object, **kwargs: object) -> Message:
        room = kwargs["room"]
        assert isinstance(room, Room)
        Room.objects.filter(pk=room.pk).update(
            last_seq=F("last_seq") + 1, last_rev=F("last_rev") + 1
        )
        room.refresh_from_db(fields=["last_seq", "last_rev"])
        kwargs.setdefault("seq", room.last_seq)
        kwargs.setdefault("rev", room.last_rev)
        return super()._create(model_class, *args, **kwargs)
