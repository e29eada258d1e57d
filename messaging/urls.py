from django.urls import URLPattern, URLResolver, path

from messaging.views import MessageViewSet, RoomChangesViewSet, RoomMessageViewSet, SyncView

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "rooms/<int:room_id>/messages/",
        RoomMessageViewSet.as_view({"get": "list", "post": "create"}),
        name="room-messages",
    ),
    path(
        "rooms/<int:room_id>/changes/",
        RoomChangesViewSet.as_view({"get": "list"}),
        name="room-changes",
    ),
    path("sync/", SyncView.as_view(), name="sync"),
    path(
        "messages/<int:message_id>/",
        MessageViewSet.as_view({"patch": "partial_update", "delete": "destroy"}),
        name="message-detail",
    ),
]
