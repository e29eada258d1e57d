from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from rooms.views import RoomMemberViewSet, RoomViewSet

router = SimpleRouter()
router.register("rooms", RoomViewSet, basename="room")
router.register(r"rooms/(?P<room_id>[^/.]+)/members", RoomMemberViewSet, basename="room-member")

urlpatterns: list[URLPattern | URLResolver] = router.urls
