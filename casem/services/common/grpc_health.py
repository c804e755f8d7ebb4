"""grpc.health.v1 for case-api: SERVING once every tenant database answers, NOT_SERVING while one does not."""

from __future__ import annotations

import time
from typing import Any

import grpc
import sqlalchemy as sa
import structlog
from grpc_health.v1 import health, health_pb2

from casem.app.context import AppContext

log = structlog.get_logger("case-api.grpc.health")

PROBE_TTL_SECONDS = 2.0  # a burst of health checks costs one probe per tenant, not one each
PROBE_TIMEOUT_SECONDS = 5.0


class DatabaseHealth(health.aio.HealthServicer):
    """Statuses are refreshed from a database probe when a check arrives and the last probe is stale.

    Probing on demand (instead of a background task) keeps the server free of tasks to cancel on stop;
    Watch streams see the change on the next Check or Watch of any client.
    """

    def __init__(self, context: AppContext, service_names: list[str], ttl: float = PROBE_TTL_SECONDS) -> None:
        super().__init__()
        self._ctx = context
        self._names = ["", *service_names]  # "" is the whole server
        self._ttl = ttl
        self._probed_at: float | None = None
        for name in self._names:  # no watcher exists yet: the status map can be written directly
            self._server_status[name] = health_pb2.HealthCheckResponse.NOT_SERVING

    async def _databases_answer(self) -> bool:
        for tenant, db in self._ctx.databases.items():
            try:
                async with db.reader.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            except Exception as exc:  # a probe reports, it does not raise
                log.warning("tenant database unavailable", tenant=tenant, error=str(exc))
                return False
        return True

    async def refresh(self) -> None:
        now = time.monotonic()
        if self._probed_at is not None and now - self._probed_at < self._ttl:
            return
        self._probed_at = now
        serving = await self._databases_answer()
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._names:
            await self.set(name, status)  # ignored once enter_graceful_shutdown() has run

    async def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        await self.refresh()
        return await super().Check(request, context)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        await self.refresh()
        return await super().Watch(request, context)
