from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users and JWT authentication."""

    name = "accounts"

    def ready(self) -> None:
        # Counts failed logins (user_login_failed) for the login throttles.
        from accounts import throttling  # noqa: F401
