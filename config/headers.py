"""Headers of the files WhiteNoise serves (the web client at ``/``, admin assets).

WhiteNoise answers before Django's middleware runs, so ``XFrameOptionsMiddleware`` never
sees these responses. The page's policy lives here only, as a header: ``frame-ancestors``
works in no ``<meta>`` tag, and one copy cannot drift from another. Imported by the
settings: it imports nothing of Django's.
"""

from typing import Any

# Everything from this server; no inline script or style can run; no page may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def add_static_headers(headers: Any, path: str, url: str) -> None:
    """``WHITENOISE_ADD_HEADERS_FUNCTION``: no page of ours may be framed (clickjacking)."""
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
