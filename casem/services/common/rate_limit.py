"""Per-org and per-key request rate limits, in fixed windows as Datadog counts them.

Each request counts against its org's window and its application key's window; the tighter one is
what the caller sees in Datadog's headers (`X-RateLimit-Limit`, `-Period`, `-Remaining`, `-Reset`,
`-Name`), and a request over either limit is refused (429 on HTTP, RESOURCE_EXHAUSTED on gRPC) with
`Retry-After`.

Where the counters live: on PostgreSQL, in the database every case-api replica shares (`SharedRateLimiter`:
one upsert per request, windows aligned on the wall clock), so the limits hold for the whole deployment; on
embedded SQLite (a single process), in this process (`RateLimiter`), whose windows of idle callers are dropped
as they end, so memory follows the active callers only. `rate_limiter_for` chooses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from casem.adapters.storage.rate_counters import count_requests, uncount_requests
from casem.topology.datacenters import RateLimits

ORG = "org"
KEY = "key"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    name: str  # which limit the headers describe: "org" or "key"
    limit: int
    period_s: int
    remaining: int
    reset_s: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Period": str(self.period_s),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
            "X-RateLimit-Name": f"casem-{self.name}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


def _checks(limits: RateLimits, org_id: str, key_id: str) -> list[tuple[str, str, int]]:
    """(scope, ident, limit) of each limit that is on."""
    return [
        (name, ident, limit)
        for name, ident, limit in ((ORG, org_id, limits.per_org), (KEY, key_id, limits.per_key))
        if limit > 0
    ]


def verdict(decisions: list[Decision]) -> Decision:
    """What the caller is told of one request counted against several limits: the first limit that refused it,
    else the one with the fewest requests left."""
    for decision in decisions:
        if not decision.allowed:
            return decision
    return min(decisions, key=lambda d: d.remaining)


class RateLimiter:
    """Counters in this process (embedded, single-process deployments)."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._window_start = 0.0
        self._counts: dict[tuple[str, str], int] = {}

    def _roll(self, now: float) -> None:
        period = self.limits.period_s
        start = math.floor(now / period) * period
        if start != self._window_start:
            self._window_start = start
            self._counts.clear()  # every window ends together: idle callers cost nothing

    def hit(self, org_id: str, key_id: str) -> Decision | None:
        """Count one request; None when both limits are off."""
        limits = self.limits
        checks = _checks(limits, org_id, key_id)
        if not checks:
            return None
        now = self._clock()
        self._roll(now)
        reset = max(1, math.ceil(self._window_start + limits.period_s - now))
        decisions = []
        for name, ident, limit in checks:
            used = self._counts.get((name, ident), 0)
            allowed = used < limit
            if allowed:
                self._counts[(name, ident)] = used + 1
            decisions.append(Decision(allowed, name, limit, limits.period_s, max(0, limit - used - allowed), reset))
        chosen = verdict(decisions)
        if not chosen.allowed:
            # Undo the count the other window took: a refused request uses up nothing.
            for decision, (name, ident, _limit) in zip(decisions, checks, strict=True):
                if decision.allowed:
                    self._counts[(name, ident)] -= 1
        return chosen

    async def check(self, org_id: str, key_id: str) -> Decision | None:
        """`hit`, for callers that await either kind of limiter."""
        return self.hit(org_id, key_id)


class SharedRateLimiter:
    """Counters in PostgreSQL, shared by every replica: windows start at multiples of the period on the wall
    clock, so replicas agree on them (within their clocks' skew)."""

    def __init__(self, limits: RateLimits, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.engine = engine
        self._clock = clock

    async def check(self, org_id: str, key_id: str) -> Decision | None:
        """Count one request in the shared windows; None when both limits are off."""
        limits = self.limits
        checks = _checks(limits, org_id, key_id)
        if not checks:
            return None
        now = self._clock()
        window_start = math.floor(now / limits.period_s) * limits.period_s
        reset = max(1, math.ceil(window_start + limits.period_s - now))
        callers = [(name, ident) for name, ident, _limit in checks]
        used = await count_requests(self.engine, window_start, callers)
        decisions = [
            Decision(
                used[(name, ident)] <= limit, name, limit, limits.period_s, max(0, limit - used[(name, ident)]), reset
            )
            for name, ident, limit in checks
        ]
        chosen = verdict(decisions)
        if not chosen.allowed:
            await uncount_requests(self.engine, window_start, callers)  # a refused request uses nothing up
        return chosen


Limiter = RateLimiter | SharedRateLimiter


def rate_limiter_for(limits: RateLimits, dialect: str | None, engine: AsyncEngine | None) -> Limiter:
    """Shared counters when the API's database is PostgreSQL (replicas may run beside this one), this process's
    otherwise."""
    if dialect == "postgresql" and engine is not None:
        return SharedRateLimiter(limits, engine)
    return RateLimiter(limits)


class RateLimited(Exception):  # noqa: N818 - reads as "raise RateLimited(...)"
    """A request over its org's or its key's limit; `decision` holds what the caller is told."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            f"the rate limit of {decision.limit} requests per {decision.period_s} s for this {decision.name} is "
            f"reached; retry in {decision.reset_s} s"
        )
        self.decision = decision
