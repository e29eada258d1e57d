"""A Python client for the chat API, for scripts: ``ChatClient`` and ``python -m chatclient``."""

from chatclient.client import ApiError, AuthError, ChatClient, ChatError, RoomClosed
from chatclient.tokens import Tokens, TokenStore

__all__ = ["ApiError", "AuthError", "ChatClient", "ChatError", "RoomClosed", "TokenStore", "Tokens"]
