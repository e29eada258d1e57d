"""WhiteNoise in an async middleware chain, without a thread hop on every request.

``WhiteNoiseMiddleware`` is synchronous only. Under ASGI, Django runs a synchronous
middleware in a worker thread and the rest of the chain back on the event loop, so every
API request paid for two extra thread switches (about a millisecond each here) just to
learn it was not a static file. This subclass answers on the event loop: it looks the
path up in WhiteNoise's own index and serves a hit as WhiteNoise would.
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        super().__init__(get_response)
        assert iscoroutinefunction(get_response), "an async middleware chain is expected"
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # DEBUG: looks at the file system, as WhiteNoise does
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return self.serve(static_file, request)
        return await self.get_response(request)
