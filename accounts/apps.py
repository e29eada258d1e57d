from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users and JWT authentication."""

    name = "accounts"
