"""``python -m chatclient``: log in, list rooms, send, tail a room live, export its history."""

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from chatclient.client import DEFAULT_SERVER, ChatClient, ChatError
from chatclient.tokens import DEFAULT_TOKEN_FILE, TokenStore

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


class Progress:
    """A one-line progress bar on a stream, drawn only when the stream is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, *, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty()
        self.done = 0
        self.drawn_at = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.enabled and time.monotonic() - self.drawn_at > 0.1:
            self._draw()

    def _draw(self) -> None:
        total = max(self.total, self.done)  # messages may arrive while we walk
        share = self.done / total if total else 1.0
        bar = "#" * int(share * self.WIDTH)
        self.stream.write(f"\r{self.label} [{bar:<{self.WIDTH}}] {self.done}/{total} {share:4.0%}")
        self.stream.flush()
        self.drawn_at = time.monotonic()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def printable(text: str) -> str:
    """Text for a terminal: control characters (but newline and tab) shown escaped."""
    return "".join(
        ch if ch in "\n\t" or (ch.isprintable() and ch != "\x7f") else repr(ch)[1:-1] for ch in text
    )


def read_password(prompt: str = "Password: ") -> str:
    """From the terminal without echo, or the first line of standard input in a pipe."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\r\n")


def describe_message(message: dict[str, Any]) -> str:
    author = message["author"]
    name = author.get("display_name") or author["username"]
    when = datetime.fromisoformat(message["created_at"].replace("Z", "+00:00")).astimezone()
    body = "(deleted)" if message["is_deleted"] else message["body"]
    edited = " (edited)" if message["edited_at"] and not message["is_deleted"] else ""
    return printable(f"#{message['seq']} {when:%H:%M:%S} {name}{edited}: {body}")


def describe_event(event: dict[str, Any]) -> str | None:
    kind = event["type"]
    if kind in ("message.new", "message.updated"):
        return describe_message(event["message"])
    if kind == "message.deleted":
        return f"* message {event['message_id']} was deleted"
    if kind == "presence":
        user = event["user"]
        return printable(f"* {user.get('display_name') or user['username']} is {event['status']}")
    if kind == "room.updated":
        return printable(f"* the room is now {event['room']['name']!r}")
    if kind == "room.deleted":
        return "* the room was deleted"
    return None  # typing: too chatty for a log


# Commands ------------------------------------------------------------------------------


def cmd_register(client: ChatClient, args: argparse.Namespace) -> int:
    user = client.register(args.username, read_password(), display_name=args.display_name)
    print(f"Registered and logged in as {user['username']} on {client.server}")
    return 0


def cmd_login(client: ChatClient, args: argparse.Namespace) -> int:
    client.login(args.username, read_password())
    print(f"Logged in as {args.username} on {client.server}")
    return 0


def cmd_logout(client: ChatClient, args: argparse.Namespace) -> int:
    client.logout()
    print("Logged out")
    return 0


def cmd_rooms(client: ChatClient, args: argparse.Namespace) -> int:
    listed = False
    for room in client.rooms(search=args.search, joined=args.joined):
        listed = True
        if args.json:
            print(json.dumps(room, ensure_ascii=False))
            continue
        unread = "-" if room["unread_count"] is None else room["unread_count"]
        print(
            printable(
                f"{room['id']:>6}  {room['name']:<24} {room['visibility']:<8} "
                f"members {room['member_count']:<4} unread {unread:<5} {room['role'] or ''}"
            ).rstrip()
        )
    if not listed and not args.json:
        print("no rooms (create one: python -m chatclient create NAME)", file=sys.stderr)
    return 0


def cmd_create(client: ChatClient, args: argparse.Namespace) -> int:
    visibility = "private" if args.private else "public"
    room = client.create_room(args.name, topic=args.topic, visibility=visibility)
    print(printable(f"created room {room['id']} ({room['name']}, {visibility})"))
    return 0


def cmd_join(client: ChatClient, args: argparse.Namespace) -> int:
    room = client.join(args.room_id)
    print(printable(f"joined room {room['id']} ({room['name']})"))
    return 0


def cmd_send(client: ChatClient, args: argparse.Namespace) -> int:
    message = client.send(args.room_id, args.text)
    print(f"sent #{message['seq']} (id {message['id']})")
    return 0


def say_reconnecting(reason: str, delay: float) -> None:
    """One line on stderr per reconnect, so a silent tail is never a dead one."""
    print(f"chatclient: {printable(reason)}; reconnecting in {delay:.1f} s", file=sys.stderr)


def cmd_tail(client: ChatClient, args: argparse.Namespace) -> int:
    async def run() -> None:
        events = client.tail(args.room_id, after=args.after, on_reconnect=say_reconnecting)
        async for event in events:
            line = json.dumps(event, ensure_ascii=False) if args.json else describe_event(event)
            if line is not None:
                print(line, flush=True)

    asyncio.run(run())
    return 0


def cmd_export(client: ChatClient, args: argparse.Namespace) -> int:
    progress = Progress(client.last_seq(args.room_id), label=f"room {args.room_id}")
    try:
        for message in client.history(args.room_id, after=0):
            sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
            progress.advance()
        sys.stdout.flush()
    finally:
        progress.close()
    return 0


# Wiring --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # The connection options work before and after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=argparse.SUPPRESS,
        help=f"server URL (default: $CHATCLIENT_SERVER or {DEFAULT_SERVER})",
    )
    common.add_argument(
        "--token-file",
        default=argparse.SUPPRESS,
        help=f"where tokens are kept (default: $CHATCLIENT_TOKEN_FILE or {DEFAULT_TOKEN_FILE})",
    )
    parser = argparse.ArgumentParser(
        prog="python -m chatclient",
        description="A command line for the chat API: log in, list rooms, send, tail a room "
        "live, export its history.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("register", cmd_register, "sign up and log in (password from the prompt)")
    sub.add_argument("username")
    sub.add_argument("--display-name")
    sub = command("login", cmd_login, "log in and keep the tokens (password from the prompt)")
    sub.add_argument("username")
    command("logout", cmd_logout, "end the session on the server and forget the tokens")
    sub = command("rooms", cmd_rooms, "list the rooms you can see, most recently active first")
    sub.add_argument("--search", help="only rooms whose name contains this")
    sub.add_argument("--joined", action="store_true", help="only rooms you are a member of")
    sub.add_argument("--json", action="store_true", help="one JSON object a line")
    sub = command("create", cmd_create, "create a room; you become its owner")
    sub.add_argument("name")
    sub.add_argument("--topic", default="")
    sub.add_argument("--private", action="store_true", help="only members can see it")
    sub = command("join", cmd_join, "join a public room")
    sub.add_argument("room_id", type=int, metavar="ROOM_ID")
    sub = command("send", cmd_send, "send a message to a room")
    sub.add_argument("room_id", type=int, metavar="ROOM_ID")
    sub.add_argument("text", metavar="TEXT")
    sub = command("tail", cmd_tail, "print a room's messages live until Ctrl-C")
    sub.add_argument("room_id", type=int, metavar="ROOM_ID")
    sub.add_argument(
        "--after", type=int, metavar="SEQ", help="first print the messages after this seq"
    )
    sub.add_argument("--json", action="store_true", help="print the events as JSON lines")
    sub = command("export", cmd_export, "print a room's whole history as JSON lines")
    sub.add_argument("room_id", type=int, metavar="ROOM_ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = getattr(args, "server", None) or os.environ.get("CHATCLIENT_SERVER") or DEFAULT_SERVER
    token_file = (
        getattr(args, "token_file", None)
        or os.environ.get("CHATCLIENT_TOKEN_FILE")
        or DEFAULT_TOKEN_FILE
    )
    try:
        client = ChatClient(server, store=TokenStore(Path(token_file)))
        return int(args.handler(client, args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`export | head`): stop quietly, as cat does. Python
        # flushes stdout at exit, so point it somewhere that takes the rest.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ChatError as error:  # AuthError included: its text says to log in
        print(f"chatclient: {error}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as error:
        print(f"chatclient: cannot reach {server}: {error}", file=sys.stderr)
        return EXIT_ERROR
