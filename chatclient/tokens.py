"""Where a script keeps its tokens between runs: one JSON file, one token pair per server.

Refresh tokens rotate: each refresh blacklists the token it used. Two processes sharing
one file (``tail`` in one terminal, ``send`` in another) must therefore never both
refresh the same pair, so refreshing happens under an exclusive lock on a file beside
it, and a process that finds a newer pair in the file takes it instead.
"""

import base64
import binascii
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_TOKEN_FILE = Path("~/.config/chatclient/tokens.json")


@dataclass(frozen=True)
class Tokens:
    """A token pair and whose it is."""

    access: str
    refresh: str
    username: str = ""


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only the server checks signatures."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def expires_within(token: str, seconds: float) -> bool:
    """True when the token expires within ``seconds`` (or its expiry cannot be read)."""
    exp = token_claims(token).get("exp")
    if not isinstance(exp, int | float):
        return True
    return exp - time.time() < seconds


class TokenStore:
    """A JSON file mapping server URLs to token pairs, readable by its owner only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable or corrupt: as good as logged out
        return data if isinstance(data, dict) else {}

    def load(self, server: str) -> Tokens | None:
        entry = self._read().get(server)
        if not isinstance(entry, dict):
            return None
        try:
            return Tokens(
                access=str(entry["access"]),
                refresh=str(entry["refresh"]),
                username=str(entry.get("username", "")),
            )
        except KeyError:
            return None

    def save(self, server: str, tokens: Tokens | None) -> None:
        """Writes the pair (or removes it, for None) atomically, mode 0600."""
        data = self._read()
        if tokens is None:
            data.pop(server, None)
        else:
            data[server] = asdict(tokens)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds an exclusive lock on ``<file>.lock`` against other processes."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(f"{self.path.name}.lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock
