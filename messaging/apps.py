from django.apps import AppConfig


class MessagingConfig(AppConfig):
    """Messages, their history and the WebSocket transport."""

    name = "messaging"
