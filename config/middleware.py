"""Django's ``CommonMiddleware``, with a slash redirect that never loses a method or body.

``APPEND_SLASH`` answers a path without its trailing slash with 301, which clients
re-send as a GET without the body: a POST to ``/api/v1/rooms`` listed the rooms instead
of creating one. A write gets 308 Permanent Redirect instead, which every HTTP client
follows with the same method and body. GET and HEAD keep the 301.
"""

from django.http import HttpRequest, HttpResponseBase, HttpResponsePermanentRedirect
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.utils.http import escape_leading_slashes

SAFE_METHODS = ("GET", "HEAD")


class CommonMiddleware(DjangoCommonMiddleware):
    def get_full_path_with_slash(self, request: HttpRequest) -> str:
        # Django raises in DEBUG for a write, since its 301 would drop the body; a 308
        # keeps it, so there is nothing to warn about.
        return escape_leading_slashes(request.get_full_path(force_append_slash=True))

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.status_code == 404 and self.should_redirect_with_slash(request):
            return HttpResponsePermanentRedirect(
                self.get_full_path_with_slash(request),
                preserve_request=request.method not in SAFE_METHODS,
            )
        return super().process_response(request, response)
