"""Channel-layer group naming and fan-out: the only module that sends to the layer.

Services call these through ``transaction.on_commit``, so clients never hear of a
change that was rolled back.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def room_group_name(room_id: int) -> str:
    return f"room.{room_id}"


def _group_send(room_id: int, event: dict[str, object]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    async_to_sync(layer.group_send)(room_group_name(room_id), event)


def broadcast_room_updated(room_id: int) -> None:
    """The room's name, topic or visibility changed."""
    _group_send(room_id, {"type": "room.updated"})


def broadcast_room_deleted(room_id: int) -> None:
    """Sockets in the room send ``room.deleted`` and close with 4404."""
    _group_send(room_id, {"type": "room.deleted", "room": room_id})


def broadcast_member_removed(room_id: int, user_id: int) -> None:
    """That user's sockets in the room close with 4403."""
    _group_send(room_id, {"type": "member.removed", "user_id": user_id})
