"""Channel-layer group names: one per room, one per user (every socket of theirs)."""


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"
