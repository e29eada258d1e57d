"""The Python client against a real server process: library, tokens and command line."""

import asyncio
import io
import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from chatclient import ChatClient, RoomClosed, Tokens, TokenStore
from chatclient.cli import Progress, printable
from tests.clients.conftest import PROJECT_ROOT, CuttingProxy
from tests.support.client import (
    PASSWORD,
    SECRET_KEY,
    Account,
    Server,
    create_room,
    history,
    join_room,
    post_message,
    register,
)

pytestmark = pytest.mark.clients

NEXT_TIMEOUT = 10.0
WRONG_KEY = "a-key-that-the-server-never-signs-with-0123456789"


def forged_access(account: Account, *, expires_in: int, key: str = SECRET_KEY) -> str:
    """An access token as SimpleJWT makes it; with another key the server refuses it."""
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + expires_in,
        "iat": now - 60,
        "jti": uuid.uuid4().hex,
        "user_id": str(account.id),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def refresh_status(server: Server, refresh: str) -> int:
    return server.request("POST", "/api/v1/auth/token/refresh/", body={"refresh": refresh}).status


def run_cli(
    server: Server | str, token_file: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    url = server if isinstance(server, str) else server.http_url
    return subprocess.run(
        [sys.executable, "-m", "chatclient", "--server", url, *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CHATCLIENT_TOKEN_FILE": str(token_file)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def next_message(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """The next ``message.new`` the tail yields; other events are skipped."""
    async with asyncio.timeout(NEXT_TIMEOUT):
        while True:
            event = await anext(events)
            if event["type"] == "message.new":
                return dict(event["message"])


async def post(server: Server, author: Account, room_id: int, body: str) -> dict[str, Any]:
    return await asyncio.to_thread(post_message, server, author, room_id, body)


def test_cli_logs_in_lists_rooms_sends_and_exports_the_whole_history_in_order(
    server: Server, tmp_path: Path
) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")
    room = create_room(server, alice, "general")
    create_room(server, bob, "elsewhere")
    join_room(server, bob, room["id"])
    token_file = tmp_path / "config" / "tokens.json"

    login = run_cli(server, token_file, "login", "alice", stdin=f"{PASSWORD}\n")
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert TokenStore(token_file).load(server.http_url) is not None

    joined = run_cli(server, token_file, "rooms", "--joined", "--json")
    assert joined.returncode == 0, joined.stderr
    assert [json.loads(line)["name"] for line in joined.stdout.splitlines()] == ["general"]
    found = run_cli(server, token_file, "rooms", "--search", "else")
    assert found.returncode == 0, found.stderr
    assert "elsewhere" in found.stdout
    assert "general" not in found.stdout

    sent = run_cli(server, token_file, "send", str(room["id"]), "hello from the command line")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent #1")
    for number in range(149):  # two full pages of 100 and a part
        post_message(server, bob, room["id"], f"message {number}")

    export = run_cli(server, token_file, "export", str(room["id"]))

    assert export.returncode == 0, export.stderr
    assert export.stderr == ""  # no progress bar when stderr is not a terminal
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    assert [message["seq"] for message in lines] == list(range(1, 151))
    assert lines[0]["body"] == "hello from the command line"
    stored, url = [], f"/api/v1/rooms/{room['id']}/messages/?after=0&limit=100"
    while url:
        page = history(server, alice, url)
        stored.extend(page["results"])
        url = page["next"]
    assert lines == stored


def test_cli_without_tokens_says_to_log_in(tmp_path: Path) -> None:
    result = run_cli("http://127.0.0.1:9", tmp_path / "none.json", "rooms")

    assert result.returncode == 1
    assert "not logged in" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_client_refreshes_tokens_with_rotation_and_saves_the_new_pair(
    server: Server, tmp_path: Path
) -> None:
    alice = register(server, "alice")
    store = TokenStore(tmp_path / "tokens.json")
    # Looks fresh to the client but the server refuses it: the 401 path.
    client = ChatClient(
        server.http_url,
        store=store,
        tokens=Tokens(forged_access(alice, expires_in=3600, key=WRONG_KEY), alice.refresh),
    )

    assert client.me()["username"] == "alice"

    saved = store.load(server.http_url)
    assert saved is not None
    assert saved.refresh != alice.refresh
    assert refresh_status(server, alice.refresh) == 401  # rotated: the old one is blacklisted

    # An expired access token is refreshed before use, with no 401 first.
    client.tokens = Tokens(forged_access(alice, expires_in=-10), saved.refresh)
    assert client.me()["username"] == "alice"
    newer = store.load(server.http_url)
    assert newer is not None
    assert newer.refresh != saved.refresh

    # A second process with the older pair takes the newer one from the file instead
    # of refreshing with a blacklisted token.
    other = ChatClient(server.http_url, store=store, tokens=saved)
    other.refresh()
    assert other.tokens == newer
    assert other.me()["username"] == "alice"


async def test_tail_gets_live_messages_survives_a_dropped_connection_and_catches_up(
    server: Server, proxy: CuttingProxy
) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    client = ChatClient(proxy.url, tokens=Tokens(alice.access, alice.refresh, "alice"))
    events = client.tail(room["id"], after=0, min_delay=0.05, max_delay=0.2)
    received = []
    try:
        await post(server, bob, room["id"], "one")
        received.append(await next_message(events))
        await post(server, bob, room["id"], "two")
        received.append(await next_message(events))
        connections = proxy.accepted

        proxy.cut(refuse=True)  # the network goes away while messages keep coming
        await post(server, bob, room["id"], "three")
        await post(server, bob, room["id"], "four")
        asyncio.get_running_loop().call_later(0.5, proxy.restore)
        received.append(await next_message(events))
        received.append(await next_message(events))
        await post(server, bob, room["id"], "five")
        received.append(await next_message(events))
    finally:
        await events.aclose()

    assert [m["seq"] for m in received] == [1, 2, 3, 4, 5]
    assert [m["body"] for m in received] == ["one", "two", "three", "four", "five"]
    assert all(m["author"]["username"] == "bob" for m in received)
    assert proxy.accepted > connections  # it did reconnect


async def test_tail_refreshes_a_refused_token_and_stops_when_removed_from_the_room(
    server: Server, tmp_path: Path
) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    store = TokenStore(tmp_path / "tokens.json")
    refused = forged_access(bob, expires_in=3600, key=WRONG_KEY)  # closed with 4401
    client = ChatClient(server.http_url, store=store, tokens=Tokens(refused, bob.refresh, "bob"))
    events = client.tail(room["id"], after=0, min_delay=0.05, max_delay=0.2)
    try:
        await post(server, alice, room["id"], "hi bob")
        assert (await next_message(events))["body"] == "hi bob"
        assert refresh_status(server, bob.refresh) == 401  # it refreshed, with rotation

        removed = await asyncio.to_thread(
            server.request,
            "DELETE",
            f"/api/v1/rooms/{room['id']}/members/{bob.id}/",
            token=alice.access,
        )
        assert removed.status == 204

        async def drain() -> None:
            async with asyncio.timeout(NEXT_TIMEOUT):
                async for _event in events:
                    pass

        with pytest.raises(RoomClosed) as closed:
            await drain()
        assert closed.value.code == 4403
    finally:
        await events.aclose()


def test_cli_tail_prints_messages_live_and_exits_cleanly_on_ctrl_c(
    server: Server, tmp_path: Path
) -> None:
    alice = register(server, "alice")
    bob = register(server, "bob")
    room = create_room(server, alice, "general")
    join_room(server, bob, room["id"])
    token_file = tmp_path / "tokens.json"
    ChatClient(server.http_url, store=TokenStore(token_file)).login("alice", PASSWORD)
    tail = subprocess.Popen(
        [sys.executable, "-m", "chatclient", "tail", str(room["id"]), "--after", "0"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "CHATCLIENT_SERVER": server.http_url,
            "CHATCLIENT_TOKEN_FILE": str(token_file),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert tail.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in tail.stdout], daemon=True).start()
    try:
        post_message(server, bob, room["id"], "<b>hello</b> from bob")
        line = lines.get(timeout=NEXT_TIMEOUT)
        assert line.startswith("#1 ")
        assert line.rstrip("\n").endswith("Bob: <b>hello</b> from bob")
        post_message(server, bob, room["id"], "and again")
        assert lines.get(timeout=NEXT_TIMEOUT).rstrip("\n").endswith("Bob: and again")
    finally:
        tail.send_signal(signal.SIGINT)
        _out, err = tail.communicate(timeout=15)

    assert tail.returncode == 130
    assert "Traceback" not in err


def test_cli_tail_says_on_stderr_each_time_it_reconnects(
    server: Server, proxy: CuttingProxy, tmp_path: Path
) -> None:
    alice = register(server, "alice")
    room = create_room(server, alice, "general")
    token_file = tmp_path / "tokens.json"
    ChatClient(proxy.url, store=TokenStore(token_file)).login("alice", PASSWORD)
    tail = subprocess.Popen(
        [sys.executable, "-m", "chatclient", "tail", str(room["id"]), "--after", "0"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "CHATCLIENT_SERVER": proxy.url,
            "CHATCLIENT_TOKEN_FILE": str(token_file),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    notes: queue.Queue[str] = queue.Queue()
    assert tail.stdout is not None
    assert tail.stderr is not None
    readers = [
        threading.Thread(target=lambda: [lines.put(line) for line in tail.stdout], daemon=True),
        threading.Thread(target=lambda: [notes.put(line) for line in tail.stderr], daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        post_message(server, alice, room["id"], "before")
        assert lines.get(timeout=NEXT_TIMEOUT).rstrip("\n").endswith("Alice: before")
        assert notes.empty()  # connected: nothing to say

        proxy.cut(refuse=True)
        said = [notes.get(timeout=NEXT_TIMEOUT)]  # the drop, at once
        time.sleep(1.5)  # a few more attempts, refused
        proxy.restore()
        post_message(server, alice, room["id"], "after")
        assert lines.get(timeout=NEXT_TIMEOUT).rstrip("\n").endswith("Alice: after")
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=15)
        for reader in readers:
            reader.join(timeout=5)

    said += [notes.get_nowait() for _ in range(notes.qsize())]
    assert 2 <= len(said) <= 10, said  # one line per attempt, not one per second
    for line in said:
        assert re.fullmatch(r"chatclient: .+; reconnecting in \d+\.\d s\n", line), said


def test_progress_bar_is_drawn_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(4, label="room 1", stream=stream)
        for _ in range(4):
            progress.advance()
        progress.close()

    assert terminal.getvalue().endswith("4/4 100%\n")
    assert pipe.getvalue() == ""


def test_terminal_output_escapes_control_characters() -> None:
    assert printable("a\rb\x1b[2Jc\n\td") == "a\\rb\\x1b[2Jc\n\td"
