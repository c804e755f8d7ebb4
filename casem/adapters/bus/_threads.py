"""The threading story of the bus adapters, in one place.

Both adapters wrap blocking clients (librdkafka, sqlite3). Each producer and consumer owns
one `Worker`: a single thread that runs every blocking call on its client in submission
order. Calls on one client never overlap (neither client is safe to use concurrently) and
the asyncio event loop never blocks on I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """The same, from synchronous code (construction and teardown outside a loop)."""
        return self._executor.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
