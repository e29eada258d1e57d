from django.urls import URLPattern, re_path

from messaging.consumers import ChatConsumer
from messaging.user_consumer import UserConsumer
from realtime.consumer import NoRouteConsumer

websocket_urlpatterns: list[URLPattern] = [
    # The trailing slash is optional: clients written by hand leave it off. Ids have at
    # most 18 digits (they are signed 64-bit); a longer one is no room of ours.
    re_path(r"^ws/rooms/(?P<room_id>[0-9]{1,18})/?$", ChatConsumer.as_asgi()),
    # One socket per device for all of the user's rooms (API.md: /ws/).
    re_path(r"^ws/?$", UserConsumer.as_asgi()),
    # Anything else is closed with 4404 rather than failing the handshake with a 500.
    re_path(r"", NoRouteConsumer.as_asgi()),
]
