"""The ceiling: a plain ``websockets`` broadcast server speaking the chat's frames.

What a chat server costs when it does nothing but the network part: no database, no
authentication check, no channel layer. Same URL (``/ws/rooms/{id}/``), same frames:
``hello`` on connect; ``message.send`` gets a ``message.ack`` and every socket of the
room, the sender's included, gets ``message.new`` with the next ``seq`` (each frame is
encoded once and written to all sockets with ``websockets.broadcast``); ``typing`` goes
to the others; ``read`` is accepted; ``ping`` answers ``pong``. The user is read from the
token's payload without checking its signature, only to fill in ``author``.

    python bench/ceiling.py --port 8100 [--uvloop]

It is a yardstick for bench/run.py, not a server: rooms live in memory and never end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

PATH = re.compile(r"^/ws/rooms/(\d+)/$")
MAX_FRAME = 16 * 1024


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class Room:
    __slots__ = ("id", "seq", "sockets")

    def __init__(self, room_id: int) -> None:
        self.id = room_id
        self.seq = 0
        self.sockets: set[ServerConnection] = set()


rooms: dict[int, Room] = {}
message_ids = itertools.count(1)


def token_user_id(connection: ServerConnection) -> int:
    request = connection.request
    assert request is not None
    token = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        values = parse_qs(urlsplit(request.path).query).get("token")
        token = values[0] if values else None
    if not token:
        return 0
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        return int(json.loads(base64.urlsafe_b64decode(payload))["user_id"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0


def room_frame(room: Room, member_count: int) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": f"room-{room.id}",
        "topic": "",
        "visibility": "public",
        "owner": None,
        "created_at": "2026-01-01T00:00:00Z",
        "member_count": member_count,
        "is_member": True,
        "role": "member",
        "unread_count": 0,
        "last_message": None,
    }


def error(code: str, detail: str, client_id: Any = None) -> str:
    return encode({"type": "error", "code": code, "detail": detail, "client_id": client_id})


async def handler(connection: ServerConnection) -> None:
    assert connection.request is not None
    match = PATH.match(urlsplit(connection.request.path).path)
    if match is None:
        await connection.close(4404)
        return
    room_id = int(match.group(1))
    room = rooms.get(room_id)
    if room is None:
        room = rooms[room_id] = Room(room_id)
    user_id = token_user_id(connection)
    user = {"id": user_id, "username": f"user{user_id}", "display_name": ""}
    room.sockets.add(connection)
    try:
        await connection.send(
            encode(
                {
                    "type": "hello",
                    "room": room_frame(room, len(room.sockets)),
                    "user": user,
                    "online": [],
                    "last_seq": room.seq,
                }
            )
        )
        async for text in connection:
            if not isinstance(text, str):
                await connection.send(error("invalid_json", "Frames must be text."))
                continue
            if len(text) > MAX_FRAME:
                await connection.close(4413)
                return
            try:
                frame = json.loads(text)
            except ValueError:
                await connection.send(error("invalid_json", "The frame is not valid JSON."))
                continue
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                await connection.send(error("invalid_frame", "A frame is a JSON object."))
                continue
            kind = frame["type"]
            if kind == "message.send":
                body = frame.get("body")
                client_id = frame.get("client_id") or ""
                if not isinstance(body, str) or not body.strip() or len(body) > 4000:
                    await connection.send(error("validation_error", "body: bad", client_id))
                    continue
                room.seq += 1
                message = {
                    "id": next(message_ids),
                    "room": room_id,
                    "seq": room.seq,
                    "author": user,
                    "body": body,
                    "client_id": client_id,
                    "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "edited_at": None,
                    "is_deleted": False,
                }
                # Broadcast first, synchronously: seq order is then the write order.
                broadcast(room.sockets, encode({"type": "message.new", "message": message}))
                await connection.send(
                    encode({"type": "message.ack", "client_id": client_id, "message": message})
                )
            elif kind == "typing":
                others = [s for s in room.sockets if s is not connection]
                broadcast(
                    others,
                    encode(
                        {"type": "typing", "user": user, "is_typing": bool(frame.get("is_typing"))}
                    ),
                )
            elif kind == "ping":
                await connection.send('{"type":"pong"}')
            elif kind == "read":
                pass
            else:
                await connection.send(error("unknown_type", f"Unknown frame type {kind!r}."))
    except ConnectionClosed:
        pass
    finally:
        room.sockets.discard(connection)


async def main(port: int) -> None:
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=65536,
        backlog=4096,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.port))
    else:
        asyncio.run(main(args.port))
