"""Remote rate limits, honoured in one place: a 429 (or 503) with `Retry-After` is waited out and retried.

Jira Cloud and ServiceNow answer 429 with `Retry-After` when casem calls too often. A short wait is
cheaper than failing the event: the call waits as asked (up to `max_wait_s`) and tries again, at most
`attempts` times. A longer wait, or a limit still in force after the attempts, raises the `RemoteError`
(transient) and the consumer's own retry policy takes over, so no consumer blocks for long on one remote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter

from casem.adapters.integrations.errors import RemoteError

T = TypeVar("T")

RATE_LIMITED = Counter(
    "casem_integration_rate_limited_total", "Remote answers asking casem to slow down", ["system", "outcome"]
)


@dataclass(frozen=True)
class RateLimitPolicy:
    attempts: int = 3
    max_wait_s: float = 30.0
    default_wait_s: float = 1.0  # a 429 without Retry-After


async def honour_retry_after(
    call: Callable[[], Awaitable[T]],
    policy: RateLimitPolicy,
    system: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except RemoteError as exc:
            if exc.status not in (429, 503):
                raise
            wait = exc.retry_after if exc.retry_after is not None else policy.default_wait_s
            if attempt == policy.attempts or wait > policy.max_wait_s:
                RATE_LIMITED.labels(system, "gave_up").inc()
                raise
            RATE_LIMITED.labels(system, "waited").inc()
            await sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises
