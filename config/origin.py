"""WebSocket origin check that refuses foreign browsers but lets apps and scripts in.

Channels' ``AllowedHostsOriginValidator`` refuses a handshake without an ``Origin``
header. Only browsers send one, and a browser is what a cross-site attack needs, so
a missing header is accepted and a present one must name an allowed host.
"""

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Allows a missing ``Origin``; otherwise the origin's host must be in ALLOWED_HOSTS."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, list(settings.ALLOWED_HOSTS))

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))
