from django.urls import URLPattern, path

from messaging.consumers import ChatConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/rooms/<int:room_id>/", ChatConsumer.as_asgi()),
]
