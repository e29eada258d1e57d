from django.apps import AppConfig


class RoomsConfig(AppConfig):
    """Chat rooms, their visibility and their members."""

    name = "rooms"
