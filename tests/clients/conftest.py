"""Fixtures for the client tests: the e2e servers, a proxy that can cut connections, Chromium.

The servers come from ``tests.support.servers`` (one real daphne process per test on a
database of its own). ``proxy`` puts a TCP forwarder in front of it, so a test can drop
every open connection, as a network failure would, and refuse new ones for a while.
"""

import asyncio
import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import HOST, Server
from tests.support.skips import skip_or_fail

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# As the machine notes say: headless, no sandbox as root, and nothing that calls home
# (the closed network refuses it, noisily).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class CuttingProxy:
    """Forwards TCP from its own port to the server's; ``cut()`` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.accepted = 0
        self._pipes: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._handle, HOST, 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        if self.refusing:
            client.transport.abort()
            return
        self.accepted += 1
        try:
            upstream_reader, upstream = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client.transport.abort()
            return
        self._pipes.update((client, upstream))
        await asyncio.gather(
            self._pipe(client_reader, upstream), self._pipe(upstream_reader, client)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self._pipes.discard(writer)
            writer.transport.abort()

    async def _cut(self) -> None:
        for writer in list(self._pipes):
            writer.transport.abort()  # a reset, not a clean close: as a dead link looks
        self._pipes.clear()

    def cut(self, *, refuse: bool = True) -> None:
        """Drops every open connection; with ``refuse``, new ones too until ``restore()``."""
        self.refusing = refuse
        self._run(self._cut())

    def restore(self) -> None:
        self.refusing = False

    def close(self) -> None:
        self._server.close()
        with contextlib.suppress(Exception):
            self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@pytest.fixture
def proxy(server: Server) -> Iterator[CuttingProxy]:
    """A ``CuttingProxy`` in front of this test's server."""
    cutter = CuttingProxy(server.port)
    yield cutter
    cutter.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skips (fails under REQUIRE_SERVICES) without."""
    if importlib.util.find_spec("playwright") is None:
        skip_or_fail(
            "the playwright package is not installed (pip install -r requirements-dev.txt)"
        )
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
