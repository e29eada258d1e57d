"""One object per running event loop: what a server process keeps for all of its sockets.

daphne runs one event loop per process; tests run one per test. The hub, the writer
and the process's limits each live once per loop, made on first use, and go with it.
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``get()`` the running loop's instance, made by ``factory`` the first time."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        instance = self.instances.get(loop)
        if instance is None:
            instance = self.instances[loop] = self.factory()
        return instance

    def pop(self) -> T | None:
        """Forgets the running loop's instance, returning it if there was one."""
        return self.instances.pop(asyncio.get_running_loop(), None)
