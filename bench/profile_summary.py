"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as top functions.

    python bench/profile_summary.py profile.txt [--top 30]

Prints, per thread and overall, the functions with the most samples on top of the
stack ("self") and anywhere on the stack ("total"), as percentages of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")

# Where a sample's time goes. A rule of ANYWHERE claims a sample if any frame of its
# stack matches (in the order listed: these wrap other work, such as the queries of a
# connection's set-up); otherwise the innermost frame matching a rule of INNERMOST
# decides (the outer frames of every stack are the event loop or the worker thread).
ANYWHERE: list[tuple[str, tuple[str, ...]]] = [
    ("idle: waiting in epoll", ("EpollSelector.select",)),
    (
        "DB: connection open/close (close_old_connections, connect, PRAGMAs, checkpoint)",
        (
            "get_new_connection",
            "BaseDatabaseWrapper._close",
            "BaseDatabaseWrapper.close ",
            "BaseDatabaseWrapper.connect ",
            "init_connection_state",
        ),
    ),
    ("DB: COMMIT", ("BaseDatabaseWrapper._commit",)),
    ("JWT check (simplejwt / PyJWT)", ("rest_framework_simplejwt", "jwt/")),
]
INNERMOST: list[tuple[str, tuple[str, ...]]] = [
    (
        "DB: SQL in the driver (execute/fetch)",
        ("SQLiteCursorWrapper.execute", "psycopg/", "CursorWrapper._execute"),
    ),
    ("Django ORM: query building, compiling, model instances", ("django/db/",)),
    (
        "DRF (serializers: validation, to_representation, field construction; views)",
        ("rest_framework/",),
    ),
    (
        "channel layer (channels / channels_redis / redis-py)",
        ("channels/layers.py", "channels_redis/", "redis/"),
    ),
    (
        "thread hops (sync_to_async / async_to_sync, executor, self-pipe wake-ups)",
        (
            "asgiref/sync.py",
            "futures/thread.py",
            "_write_to_self",
            "call_soon_threadsafe",
            "threading.py",
        ),
    ),
    (
        "WebSocket I/O: daphne, autobahn, Twisted",
        ("daphne/", "autobahn/", "twisted/", "_PollLikeSelector.modify"),
    ),
    ("JSON encode/decode", ("json/",)),
    (
        "project code (consumer, hub, writer, services, ordering, presence)",
        ("messaging/", "rooms/", "accounts/"),
    ),
    ("channels consumer machinery", ("channels/",)),
    ("asyncio scheduling (tasks, futures, handles)", ("asyncio/",)),
]


def categorise(frames: list[str]) -> str:
    body = [f for f in frames if not f.startswith(("thread", "process"))]
    for name, needles in ANYWHERE:
        if any(needle in frame for frame in body for needle in needles):
            return name
    for frame in reversed(body):
        for name, needles in INNERMOST:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` → ``name (to/file.py)``: one entry per function."""
    frame = LINE_NUMBER.sub(")", frame.strip())
    name, _, location = frame.partition(" (")
    if location:
        parts = location.rstrip(")").split("/")
        return f"{name} ({'/'.join(parts[-2:])})"
    return name


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def summarise(path: Path, top: int = 30) -> str:
    stacks = load(path)
    total = sum(count for _, count in stacks)
    if not total:
        return f"{path}: no samples"
    threads: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        threads[thread] += count
        categories[categorise(frames)] += count
        body = [f for f in frames if not f.startswith(("thread", "process"))]
        if body:
            own[_function(body[-1])] += count
        for name in {_function(f) for f in body}:
            inclusive[name] += count
    lines = [f"{path.name}: {total} samples"]
    lines.append("threads:")
    for thread, count in threads.most_common(10):
        lines.append(f"  {100 * count / total:5.1f}%  {thread}")
    lines.append("where the samples go (innermost matching frame):")
    for name, count in categories.most_common():
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append(f"top {top} by self samples:")
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append(f"top {top} by total samples (on the stack):")
    for name, count in inclusive.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    print(summarise(args.profile, args.top))
