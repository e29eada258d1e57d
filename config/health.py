"""``/healthz``: answers 200 when the database and the channel layer both answer."""

import asyncio
import logging
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _check_channel_layer() -> None:
    """A real round trip: send to a fresh channel and read the message back."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # A plain channel, not a process-local one from new_channel(): channels-redis reads
    # all of a process's "!" channels under one receive lock, which the process's
    # long-lived reader (the hub) holds while it waits, so a check queued behind it
    # timed out whenever a WebSocket was open. A plain channel is read directly.
    channel = f"healthz.{uuid.uuid4().hex}"
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned the wrong message")


async def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": database_sync_to_async(_check_database)(),
        "channel_layer": _check_channel_layer(),
    }
    body = {"status": "ok"}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, timeout=CHECK_TIMEOUT)
            body[name] = "ok"
        except Exception:
            logger.exception("health check failed: %s", name)
            body[name] = "unavailable"
            body["status"] = "unavailable"
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
