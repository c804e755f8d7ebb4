"""Wake-ups across processes on PostgreSQL: a commit that wrote outbox rows wakes relays in other processes.

The in-process wake-up (casem.adapters.wakeup) reaches only the pollers of the committing process. On
PostgreSQL a statement-level trigger on `domain_events` (migration 0024_perf_outbox_notify_trigger) also sends
`pg_notify(OUTBOX_NOTIFY_CHANNEL, '')` from every INSERT of outbox rows, so the transaction that wrote the events
pays no round trip of its own for it: PostgreSQL delivers it only when that transaction commits (a rollback
notifies nobody) and folds identical notifications of one transaction into one. A relay holds an
`OutboxListener`: one dedicated autocommit connection that LISTENs and turns each notification into the
in-process `notify`, so the relay's ordinary waiter wakes. Notifications are per database and a tenant's
listener connects to its tenant's database, so what it hears is its own tenant's outbox: the trigger, which
cannot know the tenant's name, sends an empty payload and the listener wakes its own tenant's relay.

The listener is an accelerator, never a dependency: while it is disconnected (database restart, connection
killed) the relay still polls (at most `idle_poll_max_s` apart), and the listener reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import psycopg.sql
import structlog
from sqlalchemy.engine import make_url

from casem.adapters.wakeup import notify, outbox_channel

log = structlog.get_logger("outbox-listener")

OUTBOX_NOTIFY_CHANNEL = "casem_outbox"  # no payload: the listener's database tells whose outbox got rows


def listener_application_name(tenant: str) -> str:
    """What the listening connection calls itself in pg_stat_activity."""
    return f"casem-outbox-listener:{tenant}"


def libpq_dsn(sqlalchemy_url: str) -> str:
    """A plain libpq DSN for psycopg from the SQLAlchemy URL the tenant's engines use."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxListener:
    """LISTENs for the tenant's outbox notifications and wakes this process's relay on each one."""

    def __init__(
        self,
        tenant: str,
        sqlalchemy_url: str,
        *,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        probe_every_s: float = 30.0,
    ) -> None:
        self.tenant = tenant
        self._dsn = libpq_dsn(sqlalchemy_url)
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._probe_every_s = probe_every_s
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while LISTEN is in place (tests wait on it)
        self.connections = 0  # how many times LISTEN was set up: a reconnect counts
        self._failing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"outbox-listener-{self.tenant}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()

    async def _run(self) -> None:
        delay = self._initial_backoff_s
        while True:
            try:
                await self._listen()
            except Exception as error:  # noqa: BLE001 - never let the accelerator take the relay down
                self.connected.clear()
                if self._failing:  # an outage: one warning when it starts, not one per attempt
                    delay = min(delay * 2, self._max_backoff_s)
                else:
                    log.warning(
                        "outbox listener disconnected; the relay polls until it reconnects",
                        tenant=self.tenant,
                        error=str(error).strip(),
                    )
                    self._failing = True
                    delay = self._initial_backoff_s
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, application_name=listener_application_name(self.tenant), connect_timeout=10
        )
        async with conn:
            await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(OUTBOX_NOTIFY_CHANNEL)))
            self.connections += 1
            self.connected.set()
            if self._failing:
                log.info("outbox listener reconnected", tenant=self.tenant)
                self._failing = False
            # Commits made while nobody listened (before the first connect, during an outage): look now.
            notify(outbox_channel(self.tenant))
            while True:
                async for _note in conn.notifies(timeout=self._probe_every_s):
                    # Only this tenant's database is heard (writers of older versions named the tenant: the same).
                    notify(outbox_channel(self.tenant))
                # Quiet for a while: a connection whose peer vanished without closing it would wait forever.
                await conn.execute("SELECT 1")
