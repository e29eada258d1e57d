"""Throttles for the unauthenticated account endpoints (register, token obtain).

DRF's ``SimpleRateThrottle`` copies ``DEFAULT_THROTTLE_RATES`` into a class attribute
when it is imported, so a later settings change (``override_settings`` in a test, say)
would never reach it. This one reads the rates each time it is asked.
"""

import logging

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class SettingsScopedRateThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` whose rate comes from the settings in force at request time."""

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.")
        return rates[self.scope]

    def allow_request(self, request: Request, view: APIView) -> bool:
        # The counters live in the cache, Redis in production. Without it, fail open:
        # otherwise nobody can log in or sign up while Redis is down.
        try:
            return super().allow_request(request, view)
        except RedisError:
            logger.warning("throttle cache unavailable; allowing %s", self.scope)
            return True
