import pytest

from accounts.models import User
from rooms.models import Membership, Room
from tests.factories import RoomFactory, UserFactory


@pytest.fixture
def owner(user: User) -> User:
    """The owner of ``room`` and ``private_room``: the ``user`` of ``auth_client``."""
    return user


@pytest.fixture
def member(other_user: User, room: Room) -> User:
    """A member of ``room`` other than its owner."""
    Membership.objects.create(room=room, user=other_user)
    return other_user


@pytest.fixture
def outsider(db: None) -> User:
    """Someone in no room at all."""
    return UserFactory.create()


@pytest.fixture
def private_room(owner: User, member: User) -> Room:
    """A private room owned by ``owner`` with ``member`` in it."""
    return RoomFactory.create(owner=owner, visibility=Room.Visibility.PRIVATE, members=[member])
