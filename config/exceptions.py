"""Error responses in DRF's shape: ``{"detail": ...}`` or field errors, never HTML."""

import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rooms.limits import RateLimited


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail: Any = exc.message_dict
        else:
            detail = {"detail": " ".join(exc.messages)}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, RateLimited):
        # A user's limit in a room (sends, edits, room updates): 429 with Retry-After,
        # for every view that lets it through.
        exc = exceptions.Throttled(
            wait=max(1, math.ceil(exc.retry_after)),
            detail="You are sending or changing faster than this room allows.",
        )
    return drf_exception_handler(exc, context)


# Errors Django answers itself (no view, or a view that crashed) keep the API's shape.


def bad_request(
    request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any
) -> JsonResponse:
    return JsonResponse({"detail": "Bad request."}, status=400)


def not_found(
    request: HttpRequest, exception: Exception, *args: Any, **kwargs: Any
) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Never a traceback, whatever DEBUG says of other pages."""
    return JsonResponse({"detail": "A server error occurred."}, status=500)
