"""Throttles for the unauthenticated account endpoints (register, token obtain) and the
admin's login.

DRF's ``SimpleRateThrottle`` copies ``DEFAULT_THROTTLE_RATES`` into a class attribute
when it is imported, so a later settings change (``override_settings`` in a test, say)
would never reach it. These read the rates each time they are asked.

Logins, the API's and the admin's, are throttled twice (API.md, Limits): every attempt
per client address (scope ``login``, one counter for both), and failed attempts per
username and address (scope ``login_failed``), counted from Django's
``user_login_failed`` signal, which ``authenticate()`` sends for both.
"""

import hashlib
import logging
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from common.text import fold_case

logger = logging.getLogger(__name__)


class SettingsScopedRateThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` whose rate comes from the settings in force at request time."""

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.")
        rate = rates[self.scope]
        return None if rate is None else str(rate)

    def allow_request(self, request: Request, view: APIView) -> bool:
        # The counters live in the cache, Redis in production. Without it, fail open:
        # otherwise nobody can log in or sign up while Redis is down.
        try:
            return super().allow_request(request, view)
        except RedisError:
            logger.warning("throttle cache unavailable; allowing %s", self.scope)
            return True


class FailedLoginThrottle(SimpleRateThrottle):
    """Refuses logins for a username from an address once too many of them failed.

    Checking records nothing: only failures count (``record_failed_login``), so a user
    who types the password right is never held up by their own successes. The rate is
    read at request time; a settings dict without ``login_failed`` turns it off.
    """

    scope = "login_failed"

    def __init__(self) -> None:  # the rate is read per request, in allow_request
        pass

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def get_cache_key(self, request: Any, view: Any = None) -> str | None:
        username = _username_of(request)
        if username is None:
            return None
        # Hashed: a username may hold what a cache key may not (spaces, any length).
        key = f"{fold_case(username)}\n{self.get_ident(request)}"
        who = hashlib.sha256(key.encode("utf-8", "surrogatepass"))  # JSON can carry "\ud800"
        return self.cache_format % {"scope": self.scope, "ident": who.hexdigest()}

    def _load(self, request: Any) -> bool:
        """Reads the rate and the history of failures; False when there is nothing to count."""
        self.rate = self.get_rate()
        if self.rate is None:
            return False
        num_requests, duration = self.parse_rate(self.rate)
        assert num_requests is not None  # a rate was given
        assert duration is not None
        self.num_requests, self.duration = num_requests, duration
        self.key = self.get_cache_key(request)
        if self.key is None:
            return False
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def allow_request(self, request: Any, view: Any = None) -> bool:
        try:
            if not self._load(request):
                return True
        except RedisError:
            logger.warning("throttle cache unavailable; allowing %s", self.scope)
            return True
        return len(self.history) < self.num_requests

    def wait(self) -> float:
        # Until enough failures have aged out of the window that one more is allowed.
        oldest_counted = self.history[self.num_requests - 1]
        return max(0.0, oldest_counted + self.duration - self.now)

    def record(self, request: Any) -> None:
        try:
            if self._load(request):
                self.history.insert(0, self.now)
                self.cache.set(self.key, self.history, self.duration)
        except RedisError:
            logger.warning("throttle cache unavailable; not counting a failed login")


def _username_of(request: Any) -> str | None:
    data = request.data if isinstance(request, Request) else request.POST
    username = data.get("username") if hasattr(data, "get") else None
    return username if isinstance(username, str) and username else None


@receiver(user_login_failed, dispatch_uid="accounts.throttling.record_failed_login")
def record_failed_login(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    """Counts a failed ``authenticate()`` against its username and client address."""
    if request is not None:
        FailedLoginThrottle().record(request)


class _AdminLoginView:
    """What ``ScopedRateThrottle`` reads of a view: the admin's login shares ``login``."""

    throttle_scope = "login"


def admin_login_throttled(request: HttpRequest) -> HttpResponse | None:
    """A 429 with ``Retry-After`` for an admin login POST over either limit, else None."""
    if request.method != "POST":
        return None  # showing the form costs nothing
    throttles: list[SimpleRateThrottle] = [SettingsScopedRateThrottle(), FailedLoginThrottle()]
    for throttle in throttles:
        if not throttle.allow_request(request, _AdminLoginView()):  # type: ignore[arg-type]
            wait = throttle.wait() or 0.0
            response = HttpResponse(
                "Too many login attempts. Try again later.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(int(wait) + 1)
            return response
    return None
