"""`python -m casem.services.case_indexer --case-api HOST:PORT`: case-indexer as a process of its own.

Configuration is the environment of every casem service: tenant DSNs (CASEM_TENANT_*_DSN or the data
dir), the bus (CASEM_KAFKA_BOOTSTRAP or CASEM_BUS_PATH), the search engine (CASEM_SEARCH_URL or the data
dir) and CASEM_INTERNAL_TOKEN. `casem run case-indexer` calls the same `run_indexer`.
"""

from __future__ import annotations

import argparse
import asyncio

from casem.adapters.bus import open_bus
from casem.app.context import AppContext
from casem.services.case_indexer.indexer import IndexerSettings, run_indexer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="case-indexer")
    parser.add_argument("--case-api", required=True, help="case-api gRPC address, host:port")
    parser.add_argument("--session-timeout", type=float, default=10.0, help="bus group session timeout (s)")
    args = parser.parse_args(argv)

    async def run() -> None:
        # case-api owns migrations; the indexer only reads.
        context = AppContext.open(migrate=False)
        bus = open_bus()
        try:
            settings = IndexerSettings(session_timeout_s=args.session_timeout)
            await run_indexer(context, bus, args.case_api, settings=settings)
        finally:
            await bus.close()
            await context.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
