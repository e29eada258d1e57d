"""What travels on a socket: frames as JSON text, error frames, and the close codes."""

import json
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from rest_framework.serializers import BaseSerializer

# Application close codes live in 4000-4999 (RFC 6455 section 7.4.2); API.md lists them.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_NOT_READING = 4408  # sent by the transport (config.transport)
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_MANY = 4429
# Not in the contract's table: the server could not open the socket (its database or
# channel layer is down); reconnect later. (daphne allows only 1000 and 3000-4999.)
CLOSE_UNAVAILABLE = 4503
# The close frame's reason, for people reading a log or a client's debugger; clients
# act on the code.
CLOSE_REASONS = {
    CLOSE_UNAUTHORIZED: "not authenticated",
    CLOSE_FORBIDDEN: "not a member",
    CLOSE_NOT_FOUND: "no such room",
    CLOSE_TOO_LARGE: "frame too large",
    CLOSE_TOO_MANY: "too many sockets",
    CLOSE_UNAVAILABLE: "server unavailable, try again",
}


class Frame(TypedDict):
    """A client frame as parsed: a JSON object with a string ``type``; the rest is the
    handler's to validate."""

    type: str
    client_id: NotRequired[Any]


class ErrorFrame(TypedDict):
    type: str  # "error"
    code: str
    detail: str
    client_id: str | None
    errors: NotRequired[Any]
    retry_after: NotRequired[float]


class FrameError(Exception):
    """A bad client frame: answered with an error frame, and the socket stays open."""

    def __init__(
        self, code: str, detail: str, *, errors: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors
        self.retry_after = retry_after

    def frame(self, client_id: str | None, echo: Mapping[str, Any] | None = None) -> ErrorFrame:
        """The error frame, with the frame's ``client_id`` and whatever else of it a
        socket echoes (``echo``: a user socket's ``room``)."""
        frame: ErrorFrame = {
            "type": "error",
            "code": self.code,
            "detail": self.detail,
            "client_id": client_id,
        }
        if echo:
            frame.update(echo)  # type: ignore[typeddict-item]
        if self.errors is not None:
            frame["errors"] = self.errors
        if self.retry_after is not None:
            frame["retry_after"] = self.retry_after
        return frame


def encode_frame(frame: Any) -> str:
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate, echoed from a client's own frame (its client_id), cannot
        # travel in a text frame: daphne would fail the socket with 1011. As an escape
        # it is still the same JSON string.
        return json.dumps(frame, ensure_ascii=True, separators=(",", ":"))
    return text


def too_large(text: str) -> bool:
    """Whether a text frame is over ``CHAT_MAX_FRAME_BYTES`` as UTF-8 (counted only when
    its length alone cannot tell)."""
    limit = settings.CHAT_MAX_FRAME_BYTES
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are Python's extensions to JSON, not JSON."""
    raise ValueError(f"{name} is not JSON")


def client_id_of(frame: Any) -> str | None:
    """The frame's ``client_id`` when it is a string: echoed in any error (API.md)."""
    if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
        return frame["client_id"]
    return None


def parse_frame(text_data: str | None) -> tuple[Any, str | None]:
    """The JSON value of a frame and its ``client_id``; raises ``FrameError`` for
    ``invalid_json``. The caller checks the shape (``frame_of``)."""
    if text_data is None:
        raise FrameError("invalid_json", "Frames must be text holding one JSON object.")
    try:
        value = json.loads(text_data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise FrameError("invalid_json", "The frame is not valid JSON.") from None
    return value, client_id_of(value)


def frame_of(value: Any) -> Frame:
    """``value`` as a ``Frame``, or ``invalid_frame``."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise FrameError("invalid_frame", "A frame is a JSON object with a string type.")
    return value  # type: ignore[return-value]


def client_id_in(text_data: str | None) -> str | None:
    """The ``client_id`` of a frame that is otherwise ignored (a refused one), looked for
    only when the text mentions one."""
    if text_data is None or '"client_id"' not in text_data:
        return None
    try:
        return client_id_of(json.loads(text_data))
    except (ValueError, RecursionError):
        return None


def _error_detail(errors: dict[str, Any]) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else messages
        parts.append(f"{field}: {text}")
    return "; ".join(parts)


def invalid(errors: Any) -> FrameError:
    """A ``validation_error`` carrying DRF-shaped ``errors``."""
    return FrameError("validation_error", _error_detail(errors), errors=errors)


def validated(serializer_class: type[BaseSerializer[Any]], frame: Any) -> dict[str, Any]:
    """The frame's fields as ``serializer_class`` validates them, or ``validation_error``."""
    serializer = serializer_class(data=frame)
    if not serializer.is_valid():
        raise invalid(serializer.errors)
    return dict(serializer.validated_data)
