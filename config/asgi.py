"""ASGI entry point: HTTP through Django, WebSocket through origin check, JWT and routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
# Populate the app registry before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config import transport  # noqa: E402
from config.origin import BrowserOriginValidator  # noqa: E402
from messaging.middleware import JWTAuthMiddleware  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402

# daphne's WebSocket protocol, with the limits it lacks (unsent data, keepalive, queued
# frames, close frames); daphne builds its factory after importing this module.
transport.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            JWTAuthMiddleware(URLRouter(websocket_urlpatterns)),
        ),
    },
)
