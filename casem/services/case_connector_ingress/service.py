"""`casem run case-connector-ingress`: the webhook receivers on the HTTP port (TLS when CASEM_TLS_CERT_FILE and
CASEM_TLS_KEY_FILE are set; or behind the cluster's TLS ingress) and the reconciliation poller, until SIGTERM.

CASEM_CONNECTOR_POLL_INTERVAL_S (default 60; 0 turns polling off, e.g. on all replicas but one) and
CASEM_CONNECTOR_POLL_LOOKBACK_S (default 3600: how far back an account's first poll reads).
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

import structlog
import uvicorn

from casem.adapters.bus import Bus
from casem.app.context import AppContext
from casem.app.integrations.remotes import RemoteSystems, remote_systems_from_env
from casem.services.case_connector_ingress.app import Ingress, create_ingress_app
from casem.services.case_connector_ingress.poller import run_poller
from casem.services.common.listen import bind_tcp, managed_uvicorn
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.services import THIRD_PARTY_READER_FLAVORS
from casem.topology.topics import third_party_topic

SERVICE = "case-connector-ingress"
log = structlog.get_logger(SERVICE)


async def run_ingress(
    context: AppContext,
    bus: Bus,
    host: str,
    port: int,
    *,
    ops_port: int | None = 9090,
    stop: asyncio.Event | None = None,
    remotes: RemoteSystems | None = None,
    poll_interval_s: float | None = None,
    lookback_s: float | None = None,
) -> None:
    remotes = remotes or remote_systems_from_env()
    interval = (
        poll_interval_s
        if poll_interval_s is not None
        else float(os.environ.get("CASEM_CONNECTOR_POLL_INTERVAL_S", "60"))
    )
    lookback = (
        lookback_s if lookback_s is not None else float(os.environ.get("CASEM_CONNECTOR_POLL_LOOKBACK_S", "3600"))
    )
    if stop is None:  # alone (`casem run`): SIGTERM stops it; inside `casem up` the stack's event does
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    # Bound first: a taken port is PortInUse now, not a log line from inside uvicorn, nor after a wait for the bus.
    sock = bind_tcp(host, port, "case-connector-ingress HTTP")
    # /healthz, /readyz and /metrics also on the ops port, where the chart's probes look for every worker: up before
    # the topics are made sure of, not ready while it waits for the bus (naming it).
    waits = EngineWaits(log, SERVICE)
    try:
        ops = (
            start_ops(all_of(database_readiness(context.databases), waits.readiness), host, ops_port, stop)
            if ops_port
            else None
        )
    except BaseException:
        sock.close()
        raise
    topics = [(third_party_topic(f).name, third_party_topic(f).partitions) for f in THIRD_PARTY_READER_FLAVORS]
    ready = False
    try:
        ready = await ensure_topics_waiting(bus, topics, waits, stop=stop)
    finally:
        if not ready:  # stopped while waiting, or the bus refused: nothing else started
            sock.close()
            stop.set()
            if ops:
                await ops
    if not ready:
        log.info("ingress stopped while waiting for the bus")
        return
    producer = bus.producer()
    app = create_ingress_app(Ingress(context, remotes, producer))
    tls = {}
    if os.environ.get("CASEM_TLS_CERT_FILE") and os.environ.get("CASEM_TLS_KEY_FILE"):
        tls = {"ssl_certfile": os.environ["CASEM_TLS_CERT_FILE"], "ssl_keyfile": os.environ["CASEM_TLS_KEY_FILE"]}
    server = managed_uvicorn(  # the caller owns the signals
        uvicorn.Config(
            app, host=host, port=sock.getsockname()[1], log_level="warning", timeout_graceful_shutdown=10, **tls
        )
    )
    http = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if http.done():
            await http  # surfaces the bind error
            raise RuntimeError(f"the webhook receivers did not start on {host}:{port}")
        await asyncio.sleep(0.05)
    poller = (
        asyncio.create_task(
            run_poller(context, remotes, producer, stop, interval_s=interval, lookback=timedelta(seconds=lookback))
        )
        if interval > 0
        else None
    )
    log.info("ingress started", host=host, port=port, polling_every_s=interval or None)
    try:
        await stop.wait()
    finally:
        server.should_exit = True  # in-flight deliveries finish: each answers after the bus acknowledged it
        await http
        stop.set()
        if poller:
            await poller
        if ops:
            await ops
        await producer.close()
        log.info("ingress stopped")
